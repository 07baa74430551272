{{ config(severity='warn') }}
-- Clang activity codes missing from seeds/clang_activity_types.csv: their events count as `other`.
select source_activity_code, count(*) as events
from {{ ref('int_email_events_classified') }}
where source_system = 'clang' and event_type = 'other'
group by 1
