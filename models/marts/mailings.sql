-- One row per mailing of either system: Clang broadcasts, Spotler mailings and Spotler campaign mailings.
with

clang_broadcasts as (
    select * from {{ ref('stg_clang__broadcasts') }}
),

spotler_mailings as (
    select * from {{ ref('stg_spotler__mailings') }}
),

spotler_interactions as (
    select * from {{ ref('int_spotler_interactions_unioned') }}
),

spotler_campaign_mailings as (
    select * from {{ ref('stg_spotler__campaign_mailings') }}
),

clang as (
    select
        'clang:' || broadcast_id as mailing_key,
        'clang' as source_system,
        broadcast_id as source_mailing_id,
        broadcast_type as mailing_type,
        false as is_campaign_mailing,
        broadcast_name as mailing_name,
        subject,
        sent_at,
        cast(null as {{ dbt.type_string() }}) as archive_link,
        cast(null as {{ dbt.type_string() }}) as campaign_name,
        cast(null as {{ dbt.type_string() }}) as sender,
        cast(null as {{ dbt.type_string() }}) as target_group
    from clang_broadcasts
),

spotler as (
    select
        'spotler:' || mailing_id,
        'spotler',
        mailing_id,
        mailing_type,
        false,
        mailing_name,
        subject,
        sent_at,
        archive_link,
        cast(null as {{ dbt.type_string() }}),
        sender,
        target_group
    from spotler_mailings
),

campaign_first_sends as (
    select
        mailing_id,
        min(event_at) as first_sent_at
    from spotler_interactions
    where mailing_kind = 'campaign_mailing' and event_type = 'sent'
    group by 1
),

spotler_campaign as (
    select
        'spotler:' || c.mailing_id,
        'spotler',
        c.mailing_id,
        c.mailing_type,
        true,
        c.mailing_name,
        c.subject,
        f.first_sent_at,
        cast(null as {{ dbt.type_string() }}),
        c.campaign_name,
        c.sender,
        c.campaign_name as target_group
    from spotler_campaign_mailings as c
    left join campaign_first_sends as f using (mailing_id)
),

final as (
    select * from clang
    union all
    select * from spotler
    union all
    select * from spotler_campaign
)

select * from final
