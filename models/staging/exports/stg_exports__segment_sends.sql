-- Every contact a segment was sent to, whatever the target, with when: what the re-activation cooldown reads.
-- Deployteq: the contacts of a CSV trigger uploaded (or processed); a rejected file (status failed) sent
-- nobody. Spotler: contacts whose external campaign trigger was started (or who were in the campaign already),
-- and those of an export not finished yet (their call may have been carried out: counted, never mailed twice).
-- Audience members are not sends: an audience mirrors its segment, and a cooldown would empty it.
with

trigger_log as (
    select * from {{ source_or_empty('exports', 'csv_trigger_log') }}
),

trigger_contacts as (
    select * from {{ source_or_empty('exports', 'csv_trigger_contacts') }}
),

spotler_log as (
    select * from {{ source_or_empty('exports', 'spotler_export_log') }}
),

spotler_contacts as (
    select * from {{ source_or_empty('exports', 'spotler_export_contacts') }}
),

csv_sends as (
    select
        c.export_id,
        l.segment,
        'deployteq_csv_trigger' as target_kind,
        l.file_name as target,
        c.contact_key,
        c.email,
        l.status as delivery_status,
        l.uploaded_at as sent_at
    from trigger_contacts c
    inner join trigger_log l on l.export_id = c.export_id
    where l.status in ('uploaded', 'done')
),

spotler_sends as (
    select
        c.export_id,
        l.segment,
        'spotler_campaign_trigger' as target_kind,
        l.target,
        c.contact_key,
        c.email,
        c.status as delivery_status,
        coalesce(c.answered_at, l.recorded_at) as sent_at
    from spotler_contacts c
    inner join spotler_log l on l.export_id = c.export_id
    where l.target_kind = 'campaign_trigger'
      and c.status in ('triggered', 'already-in-campaign', 'pending', 'calling')
),

final as (
    select * from csv_sends
    union all
    select * from spotler_sends
)

select * from final
