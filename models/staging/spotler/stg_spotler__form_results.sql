-- Every form result Spotler holds, with the address it names. Spotler's form results say nothing of who sent
-- them; a form that asks for the address (a subscribe or profile form) carries it among its answers, and that
-- answer, normalised, is the result's address. A result without such an answer names nobody (email null).
with

form_results as (
    select * from {{ source_or_empty('spotler', 'form_results') }}
),

renamed as (
    select
        form_id,
        form_result_id,
        -- the first answer that is an e-mail address: the answers are Spotler's JSON list, each answer a list
        -- of strings ("answer": ["a@b.nl"]); no backslash in the pattern, which Spark's string literals would eat
        {{ normalize_email("regexp_extract(answers, '\"answer\": ?.\" *([^\"@ ]+@[^\"@ ]+[.][^\"@ ]+) *\"', 1)") }}
            as email,
        submitted_at,
        test_result as is_test_result,
        completed as is_completed,
        answers
    from form_results
)

select * from renamed
