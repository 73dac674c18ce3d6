SELECT
  "__quiver_label"."user_id",
  "__quiver_label"."ts",
  "__quiver_feature_0"."__quiver_value" AS "amount_7d",
  "__quiver_label"."is_fraud" AS "label",
  "__quiver_label"."__quiver_row_id"
FROM (SELECT "user_id", "ts", "is_fraud", ROW_NUMBER() OVER () AS "__quiver_row_id" FROM "analytics"."labels" AS "__quiver_label") AS "__quiver_label"
LEFT JOIN LATERAL (
  SELECT "__quiver_source"."amount_7d" AS "__quiver_value" FROM "analytics"."user_features" AS "__quiver_source"
  WHERE "__quiver_source"."user_id" = "__quiver_label"."user_id" AND "__quiver_source"."ts" <= "__quiver_label"."ts"
  ORDER BY "__quiver_source"."ts" DESC, "__quiver_source"."amount_7d" DESC NULLS LAST
  LIMIT 1
) AS "__quiver_feature_0" ON TRUE
