{{ config(materialized='view') }}
select customer_id, name, revenue
from {{ ref('customer_revenue') }}
order by revenue desc
limit 10
