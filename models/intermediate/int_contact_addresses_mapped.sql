-- Which e-mail address an external customer id (the ERP's customer code) stands for. Spotler's events
-- carry only that id; Directo knows the address, and so do Clang's activity rows.
with

directo as (
    select customer_code as external_customer_id, email, 1 as preference, changed_at as seen_at
    from {{ ref('stg_directo__customers') }}
    where email is not null
),

clang as (
    select external_customer_id, email, 2 as preference, max(activity_at) as seen_at
    from {{ ref('stg_clang__activities') }}
    where external_customer_id is not null and email is not null
    group by all
),

candidates as (
    select * from directo
    union all
    select * from clang
),

final as (
    select external_customer_id, email
    from candidates
    qualify row_number() over (partition by external_customer_id order by preference, seen_at desc, email) = 1
)

select * from final
