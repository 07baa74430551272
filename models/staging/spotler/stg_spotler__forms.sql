-- Spotler's forms: the name and kind of each (subscribe, unsubscribe, edit profile, a survey).
with

forms as (
    select * from {{ source_or_empty('spotler', 'forms') }}
),

renamed as (
    select
        form_id,
        form_name,
        form_sub_type,
        form_state
    from forms
)

select * from renamed
