with

customers as (
    select * from {{ source_or_empty('directo', 'customers') }}
),

renamed as (
    select
        code as customer_code,
        name as customer_name,
        contact as contact_name,
        {{ normalize_email('email') }} as email,
        country as country_code,
        {{ adapter.quote('class') }} as customer_class,
        phone,
        closed = 1 as is_closed,
        deleted_at is not null as is_deleted,
        optin as is_opted_in,
        optin_raw,
        optin_flagged as is_optin_unreadable,
        optin_date,
        ts as changed_at,
        deleted_at
    from customers
)

select * from renamed
