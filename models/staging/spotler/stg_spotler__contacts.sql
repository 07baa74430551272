-- Spotler's contacts: the address each external contact id stands for, and Spotler's own e-mail opt-in (the
-- EMAIL channel) with when the contact last changed, which dates that channel's value.
with

contacts as (
    select * from {{ source_or_empty('spotler', 'contacts') }}
),

renamed as (
    select
        external_id as external_contact_id,
        encrypted_id as encrypted_contact_id,
        {{ normalize_email('email') }} as email,
        email_opt_in,
        sms_opt_in,
        created_at,
        last_changed_at,
        test_group,
        temporary as is_temporary,
        properties
    from contacts
    where external_id is not null
)

select * from renamed
