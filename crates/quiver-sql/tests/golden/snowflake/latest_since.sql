-- ?: Timestamp(2024-01-01T00:00:10Z)
SELECT CAST("__quiver_source"."user_id" AS VARCHAR) AS "entity", "__quiver_source"."v" AS "value", CONVERT_TIMEZONE('UTC', "__quiver_source"."ts") AS "event_time"
FROM "analytics"."events" AS "__quiver_source"
WHERE "__quiver_source"."user_id" IS NOT NULL AND "__quiver_source"."ts" IS NOT NULL AND CAST(CONVERT_TIMEZONE('UTC', "__quiver_source"."ts") AS TIMESTAMP_NTZ) > CAST(? AS TIMESTAMP_NTZ)
QUALIFY ROW_NUMBER() OVER (PARTITION BY "__quiver_source"."user_id" ORDER BY "__quiver_source"."ts" DESC NULLS LAST, "__quiver_source"."created" DESC NULLS LAST, "__quiver_source"."v" DESC NULLS LAST) = 1
