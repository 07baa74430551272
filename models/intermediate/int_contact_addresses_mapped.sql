{{ config(materialized='incremental', unique_key='external_customer_id') }}
-- Which e-mail address an external customer id (the ERP's customer code) stands for. Spotler's events
-- carry only that id; Directo knows the address, and so do Clang's activity rows and Spotler's own contacts.
-- Directo wins, then the address Clang saw last, then Spotler's contact record. Incremental: the previous
-- answer competes with Directo and with the Clang rows of files loaded since (a table, because every build of
-- int_spotler_email_events joins it).
with

directo_customers as (
    select * from {{ ref('stg_directo__customers') }}
),

clang_activities as (
    select * from {{ ref('stg_clang__activities') }}
    {% if is_incremental() %}
        where file_loaded_at > (select coalesce(max(clang_loaded_at), {{ epoch() }}) from {{ this }})
    {% endif %}
),

spotler_contacts as (
    select * from {{ ref('stg_spotler__contacts') }}
),

directo as (
    select
        customer_code as external_customer_id,
        email,
        1 as preference,
        changed_at as seen_at
    from directo_customers
    where email is not null
),

clang_rows as (
    select
        external_customer_id,
        email,
        activity_at,
        file_loaded_at
    from clang_activities
    where external_customer_id is not null and email is not null
),

clang as (
    select
        external_customer_id,
        email,
        2 as preference,
        max(activity_at) as seen_at
    from clang_rows
    group by external_customer_id, email
),

spotler as (
    -- all of Spotler's contacts every build, as Directo's customers: the table holds each one's latest record
    select
        external_contact_id as external_customer_id,
        email,
        3 as preference,
        last_changed_at as seen_at
    from spotler_contacts
    where email is not null
),

candidates as (
    select * from directo
    union all
    select * from clang
    union all
    select * from spotler
    {% if is_incremental() %}
        union all
        select
            external_customer_id,
            email,
            preference,
            seen_at
        from {{ this }}
    {% endif %}
),

final as (
    select
        external_customer_id,
        email,
        preference,
        seen_at,
        {% if is_incremental() %}
            coalesce((select max(file_loaded_at) from clang_rows), (select max(clang_loaded_at) from {{ this }}))
        {% else %}
            (select max(file_loaded_at) from clang_rows)
        {% endif %} as clang_loaded_at
    from candidates
    qualify row_number() over (partition by external_customer_id order by preference asc, seen_at desc, email asc) = 1
)

select * from final
