SELECT "entity", "value", "event_time" FROM (
  SELECT CAST("__quiver_source"."user_id" AS VARCHAR) AS "entity", "__quiver_source"."v" AS "value", arrow_cast(NULL, 'Timestamp(Microsecond, Some("UTC"))') AS "event_time", ROW_NUMBER() OVER (PARTITION BY "__quiver_source"."user_id" ORDER BY "__quiver_source"."v" DESC NULLS LAST) AS "__quiver_rank"
  FROM "analytics"."events" AS "__quiver_source"
  WHERE "__quiver_source"."user_id" IS NOT NULL
) AS "__quiver_ranked"
WHERE "__quiver_rank" = 1
