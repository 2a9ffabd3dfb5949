-- The demo schema (test-support/citus/demo-schema.sql), made idempotent for the compose stack's init
-- service: run with psql on the coordinator, database "citus", by compose/init/init.sh.
-- Tables are created if missing, distributed if not yet in pg_dist_partition, and loaded if
-- empty, so re-running it leaves an existing cluster as it is.
-- `documents.embedding` is pgvector's vector(4) when the image offers the `vector` extension
-- (the Citus image does not; the demo schema's float8[] otherwise, with a `<->` operator over
-- float8[] so `ORDER BY embedding <-> $1 LIMIT k` has the same shape either way, as the load
-- tester's setup does).
\set ON_ERROR_STOP on
SET client_min_messages = warning;

SET citus.shard_count = 32;
SET citus.shard_replication_factor = 1;

-- users
CREATE TABLE IF NOT EXISTS users (user_id bigint PRIMARY KEY, username text, email text);
SELECT create_distributed_table('users', 'user_id', shard_count := 32)
 WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'users'::regclass);

-- events
CREATE TABLE IF NOT EXISTS events (event_id bigserial, user_id bigint, kind text, payload jsonb,
                                   created_at timestamptz, PRIMARY KEY (user_id, event_id));
SELECT create_distributed_table('events', 'user_id', colocate_with := 'users')
 WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'events'::regclass);

-- config (reference table)
CREATE TABLE IF NOT EXISTS config (key text PRIMARY KEY, value text);
SELECT create_reference_table('config')
 WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'config'::regclass);

-- orders
CREATE TABLE IF NOT EXISTS orders (order_id bigint, user_id bigint, total numeric(10,2),
                                   PRIMARY KEY (user_id, order_id));
SELECT create_distributed_table('orders', 'user_id', colocate_with := 'users')
 WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'orders'::regclass);

-- accounts (uuid key)
CREATE TABLE IF NOT EXISTS accounts (account_uuid uuid PRIMARY KEY, name text);
SELECT create_distributed_table('accounts', 'account_uuid')
 WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'accounts'::regclass);

-- tenants_kv (text key)
CREATE TABLE IF NOT EXISTS tenants_kv (tenant text, k text, v text, PRIMARY KEY (tenant, k));
SELECT create_distributed_table('tenants_kv', 'tenant')
 WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'tenants_kv'::regclass);

-- page_views (int4 key)
CREATE TABLE IF NOT EXISTS page_views (site_id int, viewed_at timestamptz, url text);
SELECT create_distributed_table('page_views', 'site_id')
 WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'page_views'::regclass);

-- documents: vector(4) with pgvector, float8[] without (an existing table keeps its type)
SELECT to_regclass('documents') IS NULL
       AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') AS use_pgvector \gset
\if :use_pgvector
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS documents (doc_id bigint PRIMARY KEY, body text, embedding vector(4));
\else
CREATE TABLE IF NOT EXISTS documents (doc_id bigint PRIMARY KEY, body text, embedding float8[]);
\endif
-- default colocation => same group as users (bigint, 32 shards)
SELECT create_distributed_table('documents', 'doc_id')
 WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'documents'::regclass);

-- local_notes (a plain table on the coordinator)
CREATE TABLE IF NOT EXISTS local_notes (id int);

-- data: each table is loaded only while it is empty
SELECT NOT EXISTS (SELECT 1 FROM users) AS load \gset
\if :load
INSERT INTO users SELECT g, 'user' || g, 'user' || g || '@example.com' FROM generate_series(1, 5000) g;
\endif

SELECT NOT EXISTS (SELECT 1 FROM events) AS load \gset
\if :load
INSERT INTO events (user_id, kind, payload, created_at)
  SELECT 1 + (g % 5000), (ARRAY['click','view','buy'])[1 + g % 3], jsonb_build_object('n', g),
         timestamptz '2024-01-01' + g * interval '1 minute'
  FROM generate_series(1, 10000) g;
\endif

SELECT NOT EXISTS (SELECT 1 FROM config) AS load \gset
\if :load
INSERT INTO config SELECT 'key' || g, 'value' || g FROM generate_series(1, 200) g;
\endif

SELECT NOT EXISTS (SELECT 1 FROM orders) AS load \gset
\if :load
INSERT INTO orders SELECT g, 1 + (g % 5000), (g % 1000) + 0.99 FROM generate_series(1, 8000) g;
\endif

SELECT NOT EXISTS (SELECT 1 FROM accounts) AS load \gset
\if :load
INSERT INTO accounts SELECT md5('acct' || g)::uuid, 'account ' || g FROM generate_series(1, 3000) g;
\endif

SELECT NOT EXISTS (SELECT 1 FROM tenants_kv) AS load \gset
\if :load
INSERT INTO tenants_kv SELECT 'tenant' || (g % 300), 'k' || g, 'v' || g FROM generate_series(1, 4000) g;
\endif

SELECT NOT EXISTS (SELECT 1 FROM page_views) AS load \gset
\if :load
INSERT INTO page_views SELECT g % 500, timestamptz '2024-01-01' + g * interval '1 second', '/page/' || (g % 97)
  FROM generate_series(1, 6000) g;
\endif

SELECT NOT EXISTS (SELECT 1 FROM documents) AS load,
       coalesce((SELECT t.typname = 'vector' FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                  WHERE a.attrelid = 'documents'::regclass AND a.attname = 'embedding'), false) AS pgvector \gset
\if :load
\if :pgvector
INSERT INTO documents SELECT g, 'document body ' || g,
  ARRAY[sin(g)::float8, cos(g)::float8, sin(g * 0.5)::float8, cos(g * 0.25)::float8]::vector
  FROM generate_series(1, 3000) g;
\else
INSERT INTO documents SELECT g, 'document body ' || g,
  ARRAY[sin(g)::float8, cos(g)::float8, sin(g * 0.5)::float8, cos(g * 0.25)::float8]
  FROM generate_series(1, 3000) g;
\endif
\endif

SELECT NOT EXISTS (SELECT 1 FROM local_notes) AS load \gset
\if :load
INSERT INTO local_notes SELECT generate_series(1, 1000);
\endif

-- Without pgvector: l2_distance and `<->` over float8[], on the coordinator and on the workers
-- (shard queries run there; Citus does not propagate CREATE OPERATOR).
\if :pgvector
\else
CREATE OR REPLACE FUNCTION l2_distance(a float8[], b float8[]) RETURNS float8
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  AS 'SELECT sqrt(sum((x - y) ^ 2)) FROM unnest(a, b) AS t(x, y)';
DO $op$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_operator WHERE oprname = '<->'
                 AND oprleft = 'float8[]'::regtype AND oprright = 'float8[]'::regtype) THEN
    CREATE OPERATOR <-> (LEFTARG = float8[], RIGHTARG = float8[], FUNCTION = l2_distance, COMMUTATOR = <->);
  END IF;
END $op$;
-- One DO block per command so a failure on any worker stops the init service.
DO $chk$ DECLARE failed text; BEGIN
  SELECT string_agg(nodename || ': ' || result, '; ') INTO failed FROM run_command_on_workers($cmd$
    CREATE OR REPLACE FUNCTION l2_distance(a float8[], b float8[]) RETURNS float8
      LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
      AS 'SELECT sqrt(sum((x - y) ^ 2)) FROM unnest(a, b) AS t(x, y)'
  $cmd$) WHERE NOT success;
  IF failed IS NOT NULL THEN RAISE EXCEPTION 'l2_distance on the workers: %', failed; END IF;
END $chk$;
DO $chk$ DECLARE failed text; BEGIN
  SELECT string_agg(nodename || ': ' || result, '; ') INTO failed FROM run_command_on_workers($cmd$
    DO $op$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_operator WHERE oprname = '<->'
                     AND oprleft = 'float8[]'::regtype AND oprright = 'float8[]'::regtype) THEN
        CREATE OPERATOR <-> (LEFTARG = float8[], RIGHTARG = float8[], FUNCTION = l2_distance, COMMUTATOR = <->);
      END IF;
    END $op$
  $cmd$) WHERE NOT success;
  IF failed IS NOT NULL THEN RAISE EXCEPTION 'operator <-> on the workers: %', failed; END IF;
END $chk$;
\endif

ANALYZE;
