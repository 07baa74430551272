-- The contacts of each Deployteq CSV trigger uploaded (or processed), from the export's own log: a file
-- Deployteq rejected (status failed) sent nobody.
with

trigger_log as (
    select * from {{ source_or_empty('exports', 'csv_trigger_log') }}
),

trigger_contacts as (
    select * from {{ source_or_empty('exports', 'csv_trigger_contacts') }}
),

sends as (
    select
        c.export_id,
        l.segment,
        'deployteq_csv_trigger' as target_kind,
        l.file_name as target,
        c.contact_key,
        c.email,
        l.status as delivery_status,
        l.uploaded_at as sent_at
    from trigger_contacts as c
    inner join trigger_log as l on c.export_id = l.export_id
    where l.status in ('uploaded', 'done')
)

select * from sends
