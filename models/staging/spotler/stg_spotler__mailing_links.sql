with

links as (
    select * from {{ source_or_empty('spotler', 'mailing_links') }}
),

renamed as (
    select
        mailing_kind,
        mailing_id,
        link_id,
        link_name,
        url,
        link_type
    from links
)

select * from renamed
