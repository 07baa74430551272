-- Spotler's own statistics of a mailing at every fetch: the response curve while it settles.
with

snapshots as (
    select * from {{ ref('stg_spotler__mailing_statistics_snapshots') }}
),

all_mailings as (
    select * from {{ ref('mailings') }}
),

mailings as (
    select
        source_mailing_id,
        mailing_key,
        sent_at
    from all_mailings
    where source_system = 'spotler'
),

final as (
    select
        m.mailing_key,
        s.fetched_at,
        {{ dbt.datediff('m.sent_at', 's.fetched_at', 'hour') }} as hours_since_send,
        s.sent_count,
        s.accepted_count,
        s.open_count,
        s.open_rendered_count,
        s.click_count,
        s.hard_bounce_count,
        s.soft_bounce_count,
        s.unsubscribe_count,
        s.conversion_click_count,
        s.webshop_click_count,
        s.carts_created_count,
        s.carts_paid_count,
        s.revenue,
        {{ safe_rate('s.open_count', 's.accepted_count') }} as open_rate,
        {{ safe_rate('s.click_count', 's.accepted_count') }} as click_rate
    from snapshots as s
    inner join mailings as m on s.mailing_id = m.source_mailing_id
)

select * from final
