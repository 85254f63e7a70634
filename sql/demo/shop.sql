-- Demo data for tenant `demo`: a small online shop in schema `shop`, generated (deterministic
-- pseudo-random values after setseed). Loaded once by `sextant serve` on first run and by
-- `sextant demo`; re-running replaces the tables. Runs as the admin connection, as sextant_owner.

set role sextant_owner;
select setseed(0.42);

drop table if exists shop.order_items, shop.orders, shop.products, shop.customers cascade;

create table shop.customers (
  id integer primary key,
  full_name text not null,
  email text not null unique,
  country text not null,
  segment text not null check (segment in ('consumer', 'small_business', 'enterprise')),
  signed_up_at timestamptz not null
);
comment on table shop.customers is 'People and companies who have an account in the shop.';
comment on column shop.customers.full_name is 'Display name of the customer.';
comment on column shop.customers.email is 'Login e-mail address (sensitive).';
comment on column shop.customers.country is 'ISO 3166-1 alpha-2 country of the billing address.';
comment on column shop.customers.segment is 'Marketing segment: consumer, small_business or enterprise.';
comment on column shop.customers.signed_up_at is 'When the account was created.';

insert into shop.customers
select i,
       (array['Ada','Grace','Alan','Edsger','Barbara','Donald','Frances','John','Margaret','Ken',
              'Radia','Tim','Leslie','Shafi','Whitfield','Sophie'])[1 + (i * 7) % 16]
         || ' ' ||
       (array['Lovelace','Hopper','Turing','Dijkstra','Liskov','Knuth','Allen','Backus','Hamilton',
              'Thompson','Perlman','Berners','Lamport','Goldwasser','Diffie','Wilson'])[1 + (i * 11) % 16],
       'customer' || i || '@example.com',
       (array['US','GB','DE','FR','NL','SE','JP','BR','IN','CA'])[1 + floor(random() * 10)::int],
       (array['consumer','consumer','consumer','small_business','enterprise'])[1 + floor(random() * 5)::int],
       timestamptz '2023-01-01' + random() * interval '900 days'
from generate_series(1, 1500) as i;

create table shop.products (
  id integer primary key,
  sku text not null unique,
  name text not null,
  category text not null,
  unit_price numeric(10, 2) not null check (unit_price > 0),
  active boolean not null default true
);
comment on table shop.products is 'The catalogue of things the shop sells.';
comment on column shop.products.sku is 'Stock keeping unit, unique per product.';
comment on column shop.products.category is 'Product family, e.g. books or hardware.';
comment on column shop.products.unit_price is 'List price in EUR, before discounts and tax.';
comment on column shop.products.active is 'Whether the product can still be ordered.';

insert into shop.products
select i,
       'SKU-' || lpad(i::text, 5, '0'),
       (array['Compact','Deluxe','Travel','Classic','Pro','Mini'])[1 + i % 6] || ' ' ||
       (array['notebook','keyboard','lamp','backpack','mug','headphones','chair','monitor','cable','novel'])[1 + (i / 6) % 10],
       (array['stationery','hardware','home','bags','kitchen','audio','furniture','hardware','accessories','books'])[1 + (i / 6) % 10],
       round((5 + random() * 395)::numeric, 2),
       random() > 0.08
from generate_series(1, 120) as i;

create table shop.orders (
  id integer primary key,
  customer_id integer not null references shop.customers,
  status text not null check (status in ('placed', 'shipped', 'delivered', 'returned', 'cancelled')),
  ordered_at timestamptz not null,
  shipped_at timestamptz
);
create index orders_customer_idx on shop.orders (customer_id);
create index orders_ordered_at_idx on shop.orders (ordered_at);
comment on table shop.orders is 'One row per checkout; see order_items for what was bought.';
comment on column shop.orders.status is 'Lifecycle: placed, shipped, delivered, returned or cancelled.';
comment on column shop.orders.ordered_at is 'When the customer checked out.';
comment on column shop.orders.shipped_at is 'When the parcel left the warehouse; null until shipped.';

insert into shop.orders
select i,
       1 + floor(random() * 1500)::int,
       s.status,
       o.at,
       case when s.status in ('shipped', 'delivered', 'returned') then o.at + random() * interval '4 days' end
from generate_series(1, 4000) as i
cross join lateral (select timestamptz '2024-01-01' + random() * interval '700 days' + (i * 0) * interval '1 s' as at) as o
cross join lateral (select (array['delivered','delivered','delivered','shipped','placed','returned','cancelled'])
                             [1 + floor(random() * 7)::int + (i * 0)] as status) as s;

create table shop.order_items (
  order_id integer not null references shop.orders on delete cascade,
  line_no smallint not null,
  product_id integer not null references shop.products,
  quantity integer not null check (quantity > 0),
  unit_price numeric(10, 2) not null,
  primary key (order_id, line_no)
);
create index order_items_product_idx on shop.order_items (product_id);
comment on table shop.order_items is 'Lines of an order: which product, how many, at what price.';
comment on column shop.order_items.unit_price is 'Price actually charged per unit, in EUR.';

insert into shop.order_items
select o.id, l.n, p.id, 1 + floor(random() * 4)::int, round(p.unit_price * (0.8 + random() * 0.2)::numeric, 2)
from shop.orders as o
cross join lateral generate_series(1, 1 + (o.id * 7919) % 4) as l(n)
join shop.products as p on p.id = 1 + ((o.id * 31 + l.n * 17) % 120);

create or replace view shop.monthly_revenue as
  select date_trunc('month', o.ordered_at)::date as month,
         count(distinct o.id) as orders,
         sum(i.quantity * i.unit_price) as revenue_eur
  from shop.orders as o
  join shop.order_items as i on i.order_id = o.id
  where o.status not in ('cancelled', 'returned')
  group by 1;
comment on view shop.monthly_revenue is 'Revenue in EUR per calendar month, excluding cancelled and returned orders.';

analyze shop.customers, shop.products, shop.orders, shop.order_items;
grant select on all tables in schema shop to sextant_t_demo;

reset role;
