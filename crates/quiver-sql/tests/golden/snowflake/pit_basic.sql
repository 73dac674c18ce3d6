WITH "__quiver_label" AS (
  SELECT "user_id", "ts", "is_fraud", ROW_NUMBER() OVER (ORDER BY "user_id" ASC NULLS LAST, "ts" ASC NULLS LAST, "is_fraud" ASC NULLS LAST) AS "__quiver_row_id", CAST(CONVERT_TIMEZONE('UTC', "__quiver_label"."ts") AS TIMESTAMP_NTZ) AS "__quiver_upper_0" FROM "analytics"."labels" AS "__quiver_label"
),
"__quiver_source_0" AS (
  SELECT "__quiver_source"."user_id" AS "__quiver_key_0", CAST(CONVERT_TIMEZONE('UTC', "__quiver_source"."ts") AS TIMESTAMP_NTZ) AS "__quiver_ts", "__quiver_source"."amount_7d" AS "__quiver_value" FROM "analytics"."user_features" AS "__quiver_source"
  WHERE "__quiver_source"."ts" IS NOT NULL
  QUALIFY ROW_NUMBER() OVER (PARTITION BY "__quiver_source"."user_id", "__quiver_source"."ts" ORDER BY "__quiver_source"."amount_7d" DESC NULLS LAST) = 1
)
SELECT
  "__quiver_label"."user_id",
  "__quiver_label"."ts",
  "__quiver_feature_0"."__quiver_value" AS "amount_7d",
  "__quiver_label"."is_fraud" AS "label",
  "__quiver_label"."__quiver_row_id"
FROM "__quiver_label" AS "__quiver_label"
ASOF JOIN "__quiver_source_0" AS "__quiver_feature_0" MATCH_CONDITION ("__quiver_label"."__quiver_upper_0" >= "__quiver_feature_0"."__quiver_ts") ON "__quiver_feature_0"."__quiver_key_0" = "__quiver_label"."user_id"
