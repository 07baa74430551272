with

datafields as (
    select * from {{ source_or_empty('directo', 'datafields') }}
),

renamed as (
    select
        customer_code,
        upper(trim(datafield_code)) as datafield_code,
        content as datafield_content,
        param as datafield_param,
        position as datafield_position
    from datafields
)

select * from renamed
