{{ config(materialized='table') }}
-- Revenue per customer, refunds excluded.
select c.id as customer_id,
       c.name,
       c.country,
       count(o.id) as paid_orders,
       coalesce(sum(o.amount), 0) as revenue
from {{ source('shop', 'customers') }} as c
left join {{ source('shop', 'orders') }} as o on o.customer_id = c.id and o.status = 'paid'
group by c.id, c.name, c.country
