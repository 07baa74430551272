-- One row per contact an export sent a segment to: which segment, to which target (a Deployteq CSV trigger
-- file or a Spotler campaign trigger), with what outcome and when; the customer card's "exports".
with

segment_sends as (
    select * from {{ ref('int_segment_sends_unioned') }}
),

final as (
    select
        export_id,
        contact_key,
        email,
        segment,
        target_kind,
        target,
        delivery_status,
        sent_at
    from segment_sends
)

select * from final
