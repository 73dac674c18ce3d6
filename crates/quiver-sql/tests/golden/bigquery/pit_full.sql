-- @p0: Int(60000000)
-- @p1: Int(3660000000)
-- @p2: Int(1500000)
-- @p3: Int(1)
WITH `__quiver_label` AS (
  SELECT `user_id`, `merchant_id`, `ts`, `is_fraud`, ROW_NUMBER() OVER (ORDER BY `user_id` ASC NULLS LAST, `merchant_id` ASC NULLS LAST, `ts` ASC NULLS LAST, `is_fraud` ASC NULLS LAST) AS `__quiver_row_id` FROM `analytics`.`labels` AS `__quiver_label`
),
`__quiver_stage_0` AS (
  SELECT `__quiver_label`.`user_id`, `__quiver_label`.`merchant_id`, `__quiver_label`.`ts`, `__quiver_label`.`is_fraud`, `__quiver_label`.`__quiver_row_id`, `__quiver_source`.`amount_7d` AS `__quiver_value_0`
  FROM `__quiver_label` AS `__quiver_label`
  LEFT JOIN `analytics`.`user_features` AS `__quiver_source` ON `__quiver_source`.`user_id` = `__quiver_label`.`user_id` AND CAST(`__quiver_source`.`ts` AS TIMESTAMP) <= TIMESTAMP_MICROS(UNIX_MICROS(CAST(`__quiver_label`.`ts` AS TIMESTAMP)) - @p0) AND CAST(`__quiver_source`.`ts` AS TIMESTAMP) >= TIMESTAMP_MICROS(UNIX_MICROS(CAST(`__quiver_label`.`ts` AS TIMESTAMP)) - @p1)
  WHERE TRUE
  QUALIFY ROW_NUMBER() OVER (PARTITION BY `__quiver_label`.`__quiver_row_id` ORDER BY `__quiver_source`.`ts` DESC NULLS LAST, `__quiver_source`.`created_at` DESC NULLS LAST, `__quiver_source`.`amount_7d` DESC NULLS LAST) = 1
),
`__quiver_stage_1` AS (
  SELECT `__quiver_label`.`user_id`, `__quiver_label`.`merchant_id`, `__quiver_label`.`ts`, `__quiver_label`.`is_fraud`, `__quiver_label`.`__quiver_row_id`, `__quiver_label`.`__quiver_value_0`, `__quiver_source`.`count_7d` AS `__quiver_value_1`
  FROM `__quiver_stage_0` AS `__quiver_label`
  LEFT JOIN `analytics`.`user_features` AS `__quiver_source` ON `__quiver_source`.`user_id` = `__quiver_label`.`user_id` AND CAST(`__quiver_source`.`ts` AS TIMESTAMP) <= CAST(`__quiver_label`.`ts` AS TIMESTAMP) AND CAST(`__quiver_source`.`ts` AS TIMESTAMP) >= TIMESTAMP_MICROS(UNIX_MICROS(CAST(`__quiver_label`.`ts` AS TIMESTAMP)) - @p2)
  WHERE TRUE
  QUALIFY ROW_NUMBER() OVER (PARTITION BY `__quiver_label`.`__quiver_row_id` ORDER BY `__quiver_source`.`ts` DESC NULLS LAST, `__quiver_source`.`count_7d` DESC NULLS LAST) = 1
),
`__quiver_latest_2` AS (
  SELECT `__quiver_source`.`user_id` AS `__quiver_key_0`, `__quiver_source`.`country` AS `__quiver_value` FROM `analytics`.`users` AS `__quiver_source` WHERE `__quiver_source`.`user_id` IS NOT NULL QUALIFY ROW_NUMBER() OVER (PARTITION BY `__quiver_source`.`user_id` ORDER BY `__quiver_source`.`country` DESC NULLS LAST) = 1
),
`__quiver_stage_2` AS (
  SELECT `__quiver_label`.`user_id`, `__quiver_label`.`merchant_id`, `__quiver_label`.`ts`, `__quiver_label`.`is_fraud`, `__quiver_label`.`__quiver_row_id`, `__quiver_label`.`__quiver_value_0`, `__quiver_label`.`__quiver_value_1`, `__quiver_latest_2`.`__quiver_value` AS `__quiver_value_2`
  FROM `__quiver_stage_1` AS `__quiver_label`
  LEFT JOIN `__quiver_latest_2` AS `__quiver_latest_2` ON `__quiver_latest_2`.`__quiver_key_0` = `__quiver_label`.`user_id`
),
`__quiver_stage_3` AS (
  SELECT `__quiver_label`.`user_id`, `__quiver_label`.`merchant_id`, `__quiver_label`.`ts`, `__quiver_label`.`is_fraud`, `__quiver_label`.`__quiver_row_id`, `__quiver_label`.`__quiver_value_0`, `__quiver_label`.`__quiver_value_1`, `__quiver_label`.`__quiver_value_2`, `__quiver_source`.`n` AS `__quiver_value_3`
  FROM `__quiver_stage_2` AS `__quiver_label`
  LEFT JOIN `analytics`.`user_merchant` AS `__quiver_source` ON `__quiver_source`.`user_id` = `__quiver_label`.`user_id` AND `__quiver_source`.`merchant` = `__quiver_label`.`merchant_id` AND CAST(`__quiver_source`.`ts` AS TIMESTAMP) <= TIMESTAMP_MICROS(UNIX_MICROS(CAST(`__quiver_label`.`ts` AS TIMESTAMP)) - @p3)
  WHERE TRUE
  QUALIFY ROW_NUMBER() OVER (PARTITION BY `__quiver_label`.`__quiver_row_id` ORDER BY `__quiver_source`.`ts` DESC NULLS LAST, `__quiver_source`.`n` DESC NULLS LAST) = 1
)
SELECT
  `__quiver_label`.`user_id`,
  `__quiver_label`.`merchant_id`,
  `__quiver_label`.`ts`,
  `__quiver_label`.`__quiver_value_0` AS `amount_7d`,
  `__quiver_label`.`__quiver_value_1` AS `count_7d`,
  `__quiver_label`.`__quiver_value_2` AS `country`,
  `__quiver_label`.`__quiver_value_3` AS `pair_count`,
  `__quiver_label`.`is_fraud` AS `label`,
  `__quiver_label`.`__quiver_row_id`
FROM `__quiver_stage_3` AS `__quiver_label`
