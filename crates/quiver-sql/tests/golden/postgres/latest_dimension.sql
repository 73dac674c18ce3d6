SELECT DISTINCT ON ("__quiver_source"."user_id") CAST("__quiver_source"."user_id" AS TEXT) AS "entity", "__quiver_source"."v" AS "value", CAST(NULL AS TIMESTAMPTZ) AS "event_time"
FROM "analytics"."events" AS "__quiver_source"
WHERE "__quiver_source"."user_id" IS NOT NULL
ORDER BY "__quiver_source"."user_id", "__quiver_source"."v" DESC NULLS LAST
