-- One row per form result that names an address: which form the contact sent, when, and whether they finished
-- it, for the customer card. Test results (of forms not yet final) are left out.
with

form_results as (
    select * from {{ ref('stg_spotler__form_results') }}
),

forms as (
    select * from {{ ref('stg_spotler__forms') }}
),

final as (
    select
        {{ dbt.hash('r.email') }} as contact_key,
        r.email,
        r.form_id,
        r.form_result_id,
        f.form_name,
        f.form_sub_type,
        r.is_completed,
        r.submitted_at
    from form_results as r
    left join forms as f on r.form_id = f.form_id
    where r.email is not null and not coalesce(r.is_test_result, false)
)

select * from final
