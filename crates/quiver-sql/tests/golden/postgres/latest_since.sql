-- $1: Timestamp(2024-01-01T00:00:10Z)
SELECT DISTINCT ON ("__quiver_source"."user_id") CAST("__quiver_source"."user_id" AS TEXT) AS "entity", "__quiver_source"."v" AS "value", CAST("__quiver_source"."ts" AS TIMESTAMPTZ) AS "event_time"
FROM "analytics"."events" AS "__quiver_source"
WHERE "__quiver_source"."user_id" IS NOT NULL AND "__quiver_source"."ts" IS NOT NULL AND "__quiver_source"."ts" > CAST($1 AS TIMESTAMPTZ)
ORDER BY "__quiver_source"."user_id", "__quiver_source"."ts" DESC NULLS LAST, "__quiver_source"."created" DESC NULLS LAST, "__quiver_source"."v" DESC NULLS LAST
