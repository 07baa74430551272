with

broadcasts as (
    select * from {{ source_or_empty('clang', 'broadcasts') }}
),

loaded_files as (
    select * from {{ source_or_empty('clang', 'loaded_files') }}
),

files as (
    select
        source_file,
        source_timezone
    from loaded_files
),

latest_per_broadcast as (
    -- a broadcast appears in every day's file it had activity: keep its latest description
    select
        broadcasts.*,
        files.source_timezone
    from broadcasts
    inner join files using (source_file)
    qualify row_number() over (
            partition by broadcasts.broadcastid order by broadcasts.file_loaded_at desc, broadcasts.source_file desc
        ) = 1
),

renamed as (
    select
        broadcastid as broadcast_id,
        beschrijving as broadcast_name,
        onderwerp as subject,
        upper(trim(broadcast_type)) as broadcast_type,
        {{ local_to_utc('verzonden_op', 'source_timezone') }} as sent_at
    from latest_per_broadcast
)

select * from renamed
