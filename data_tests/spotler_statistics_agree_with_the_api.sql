{{ config(severity='warn') }}
-- Spotler mailings whose counts differ from the API's own by more than `statistics_tolerance`.
select mailing_key, sent_count, api_sent_count, unique_open_count, api_unique_open_count,
       unique_click_count, api_unique_click_count
from {{ ref('mailing_statistics') }}
where source_system = 'spotler' and api_sent_count is not null
  and (abs(sent_count - api_sent_count) > {{ var('statistics_tolerance') }} * api_sent_count
       or abs(unique_open_count - api_unique_open_count) > {{ var('statistics_tolerance') }} * greatest(api_unique_open_count, 10)
       or abs(unique_click_count - api_unique_click_count) > {{ var('statistics_tolerance') }} * greatest(api_unique_click_count, 10))
