{# Generic data test: a rate lies between 0 and 1 (null allowed: nothing to divide by). #}
{% test share(model, column_name) %}
    select {{ column_name }} from {{ model }}
    where {{ column_name }} < 0 or {{ column_name }} > 1
{% endtest %}
