-- Every contact sent to Deployteq in a CSV trigger that was uploaded (or processed), with its segment and
-- upload time: what the re-activation cooldown reads. A rejected file (status failed) sent nobody.
with

trigger_log as (
    select * from {{ source_or_empty('exports', 'csv_trigger_log') }}
),

trigger_contacts as (
    select * from {{ source_or_empty('exports', 'csv_trigger_contacts') }}
),

final as (
    select
        c.export_id,
        l.segment,
        c.contact_key,
        c.email,
        l.file_name,
        l.status as upload_status,
        l.uploaded_at
    from trigger_contacts c
    inner join trigger_log l using (export_id)
    where l.status in ('uploaded', 'done')
)

select * from final
