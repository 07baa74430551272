-- The contacts whose Spotler external campaign trigger was started (or who were in the campaign already),
-- and those of an export not finished yet (their call may have been carried out: counted, never mailed
-- twice), from the export's own log. Audience members are not sends: an audience mirrors its segment, and a
-- cooldown would empty it.
with

spotler_log as (
    select * from {{ source_or_empty('exports', 'spotler_export_log') }}
),

spotler_contacts as (
    select * from {{ source_or_empty('exports', 'spotler_export_contacts') }}
),

sends as (
    select
        c.export_id,
        l.segment,
        'spotler_campaign_trigger' as target_kind,
        l.target,
        c.contact_key,
        c.email,
        c.status as delivery_status,
        coalesce(c.answered_at, l.recorded_at) as sent_at
    from spotler_contacts as c
    inner join spotler_log as l on c.export_id = l.export_id
    where l.target_kind = 'campaign_trigger'
        and c.status in ('triggered', 'already-in-campaign', 'pending', 'calling')
)

select * from sends
