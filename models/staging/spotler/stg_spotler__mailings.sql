with

mailings as (
    select * from {{ source_or_empty('spotler', 'mailings') }}
),

renamed as (
    select
        encrypted_id as mailing_id,
        mailing_name,
        mailing_type,
        scheduled_start_date as sent_at,
        archive_link,
        sent_count,
        sender,
        target_group,
        subject,
        from_name,
        from_email
    from mailings
)

select * from renamed
