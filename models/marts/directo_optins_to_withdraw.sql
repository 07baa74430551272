-- One row per live Directo customer whose OPTIN still says yes although the address's latest consent is an
-- opt-out stated on a mail platform (an unsubscribe, a complaint, Spotler's EMAIL channel switched off): the
-- opt-outs `warehouse sync consent` writes back to Directo as OPTIN=no, dated with the opt-out's day in
-- Directo's time zone.
--
-- Directo does not know the opt-out when its yes is undated or dated on or before the opt-out's day (a day's
-- yes counts from that day's start; on one day an opt-out beats an opt-in, as in contacts). A yes dated after
-- the opt-out made it the latest statement, so the address is no opt-out and appears here not at all. Opt-ins
-- are never written back (they come from the ERP), a bounce is no consent statement, and a Directo OPTIN=no
-- already says what the write would.
with

contacts as (
    select * from {{ ref('contacts') }}
),

customers as (
    select * from {{ ref('stg_directo__customers') }}
    where email is not null and not is_deleted
),

platform_opt_outs as (
    select
        email,
        contact_key,
        consent_changed_at as opted_out_at,
        {{ directo_day('consent_changed_at') }} as opted_out_on,
        consent_source as opted_out_by
    from contacts
    where
        not is_opted_in
        and consent_source != 'directo_optin'
        and consent_changed_at is not null
),

final as (
    select
        c.customer_code,
        o.contact_key,
        o.email,
        c.optin_date as directo_optin_date,
        o.opted_out_at,
        o.opted_out_on,
        o.opted_out_by
    from customers as c
    inner join platform_opt_outs as o on c.email = o.email
    where c.is_opted_in and (c.optin_date is null or c.optin_date <= o.opted_out_on)
)

select * from final
