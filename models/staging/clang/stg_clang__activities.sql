with

activities as (
    select * from {{ source_or_empty('clang', 'activities') }}
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

renamed as (
    select
        {{ dbt.hash("activities.source_file || ':' || cast(activities.source_line as " ~ dbt.type_string() ~ ")") }}
            as activity_id,
        activities.broadcastid as broadcast_id,
        activities.customerid as clang_customer_id,
        nullif(trim(activities.extern_klantnummer), '') as external_customer_id,
        {{ normalize_email('activities.e_mailadres') }} as email,
        trim(activities.activiteit) as activity_code,
        nullif(activities.beschrijving_activiteit, '') as activity_description,
        {{ local_to_utc('activities.activiteitdatum', 'files.source_timezone') }} as activity_at,
        activities.source_file,
        activities.source_line,
        activities.file_loaded_at,
        {{ clang_machine_flag('activities') }} as machine_flag
    from activities
    inner join files using (source_file)
)

select * from renamed
