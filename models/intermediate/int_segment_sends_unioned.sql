-- Every contact a segment was sent to, whatever the target, with when: what the re-activation cooldown reads.
with

csv_trigger_sends as (
    select * from {{ ref('stg_exports__csv_trigger_sends') }}
),

spotler_trigger_sends as (
    select * from {{ ref('stg_exports__spotler_trigger_sends') }}
),

unioned as (
    select * from csv_trigger_sends
    union all
    select * from spotler_trigger_sends
)

select * from unioned
