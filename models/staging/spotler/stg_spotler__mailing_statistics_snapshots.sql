with

snapshots as (
    select * from {{ source_or_empty('spotler', 'mailing_statistics_snapshots') }}
),

renamed as (
    select
        mailing_id,
        fetched_at,
        sent_count,
        accepted_count,
        open_count,
        open_rendered_count,
        click_count,
        hardbounce_count as hard_bounce_count,
        softbounce_count as soft_bounce_count,
        not_retained_after_bounce_count,
        conversion_click_count,
        unsubscribe_count,
        to_webshop_count as webshop_click_count,
        shoppingcart_created_count as carts_created_count,
        shoppingcart_converted_count as carts_paid_count,
        cast(conversion_value / 100 as decimal(18, 2)) as revenue
    from snapshots
)

select * from renamed
