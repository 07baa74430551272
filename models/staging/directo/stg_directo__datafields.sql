with

datafields as (
    select * from {{ source_or_empty('directo', 'datafields') }}
),

renamed as (
    select
        customer_code,
        content as datafield_content,
        param as datafield_param,
        position as datafield_position,
        upper(trim(datafield_code)) as datafield_code
    from datafields
)

select * from renamed
