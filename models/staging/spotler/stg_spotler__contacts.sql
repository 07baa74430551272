-- Spotler's contacts: the address each external contact id stands for, and Spotler's own e-mail opt-in (the
-- EMAIL channel) with when the contact last changed, which dates that channel's value.
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
from {{ source_or_empty('spotler', 'contacts') }}
where external_id is not null
