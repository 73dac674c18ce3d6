WITH `__quiver_label` AS (
  SELECT `user_id`, `merchant_id`, `is_fraud`, ROW_NUMBER() OVER (ORDER BY `user_id` ASC NULLS LAST, `merchant_id` ASC NULLS LAST, `is_fraud` ASC NULLS LAST) AS `__quiver_row_id` FROM `analytics`.`labels` AS `__quiver_label`
),
`__quiver_latest_0` AS (
  SELECT `__quiver_source`.`user_id` AS `__quiver_key_0`, `__quiver_source`.`amount_7d` AS `__quiver_value` FROM `analytics`.`user_features` AS `__quiver_source` WHERE `__quiver_source`.`user_id` IS NOT NULL AND `__quiver_source`.`ts` IS NOT NULL QUALIFY ROW_NUMBER() OVER (PARTITION BY `__quiver_source`.`user_id` ORDER BY `__quiver_source`.`ts` DESC NULLS LAST, `__quiver_source`.`created_at` DESC NULLS LAST, `__quiver_source`.`amount_7d` DESC NULLS LAST) = 1
),
`__quiver_stage_0` AS (
  SELECT `__quiver_label`.`user_id`, `__quiver_label`.`merchant_id`, `__quiver_label`.`is_fraud`, `__quiver_label`.`__quiver_row_id`, `__quiver_latest_0`.`__quiver_value` AS `__quiver_value_0`
  FROM `__quiver_label` AS `__quiver_label`
  LEFT JOIN `__quiver_latest_0` AS `__quiver_latest_0` ON `__quiver_latest_0`.`__quiver_key_0` = `__quiver_label`.`user_id`
),
`__quiver_latest_1` AS (
  SELECT `__quiver_source`.`user_id` AS `__quiver_key_0`, `__quiver_source`.`count_7d` AS `__quiver_value` FROM `analytics`.`user_features` AS `__quiver_source` WHERE `__quiver_source`.`user_id` IS NOT NULL AND `__quiver_source`.`ts` IS NOT NULL QUALIFY ROW_NUMBER() OVER (PARTITION BY `__quiver_source`.`user_id` ORDER BY `__quiver_source`.`ts` DESC NULLS LAST, `__quiver_source`.`count_7d` DESC NULLS LAST) = 1
),
`__quiver_stage_1` AS (
  SELECT `__quiver_label`.`user_id`, `__quiver_label`.`merchant_id`, `__quiver_label`.`is_fraud`, `__quiver_label`.`__quiver_row_id`, `__quiver_label`.`__quiver_value_0`, `__quiver_latest_1`.`__quiver_value` AS `__quiver_value_1`
  FROM `__quiver_stage_0` AS `__quiver_label`
  LEFT JOIN `__quiver_latest_1` AS `__quiver_latest_1` ON `__quiver_latest_1`.`__quiver_key_0` = `__quiver_label`.`user_id`
),
`__quiver_latest_2` AS (
  SELECT `__quiver_source`.`user_id` AS `__quiver_key_0`, `__quiver_source`.`country` AS `__quiver_value` FROM `analytics`.`users` AS `__quiver_source` WHERE `__quiver_source`.`user_id` IS NOT NULL QUALIFY ROW_NUMBER() OVER (PARTITION BY `__quiver_source`.`user_id` ORDER BY `__quiver_source`.`country` DESC NULLS LAST) = 1
),
`__quiver_stage_2` AS (
  SELECT `__quiver_label`.`user_id`, `__quiver_label`.`merchant_id`, `__quiver_label`.`is_fraud`, `__quiver_label`.`__quiver_row_id`, `__quiver_label`.`__quiver_value_0`, `__quiver_label`.`__quiver_value_1`, `__quiver_latest_2`.`__quiver_value` AS `__quiver_value_2`
  FROM `__quiver_stage_1` AS `__quiver_label`
  LEFT JOIN `__quiver_latest_2` AS `__quiver_latest_2` ON `__quiver_latest_2`.`__quiver_key_0` = `__quiver_label`.`user_id`
),
`__quiver_latest_3` AS (
  SELECT `__quiver_source`.`user_id` AS `__quiver_key_0`, `__quiver_source`.`merchant` AS `__quiver_key_1`, `__quiver_source`.`n` AS `__quiver_value` FROM `analytics`.`user_merchant` AS `__quiver_source` WHERE `__quiver_source`.`user_id` IS NOT NULL AND `__quiver_source`.`merchant` IS NOT NULL AND `__quiver_source`.`ts` IS NOT NULL QUALIFY ROW_NUMBER() OVER (PARTITION BY `__quiver_source`.`user_id`, `__quiver_source`.`merchant` ORDER BY `__quiver_source`.`ts` DESC NULLS LAST, `__quiver_source`.`n` DESC NULLS LAST) = 1
),
`__quiver_stage_3` AS (
  SELECT `__quiver_label`.`user_id`, `__quiver_label`.`merchant_id`, `__quiver_label`.`is_fraud`, `__quiver_label`.`__quiver_row_id`, `__quiver_label`.`__quiver_value_0`, `__quiver_label`.`__quiver_value_1`, `__quiver_label`.`__quiver_value_2`, `__quiver_latest_3`.`__quiver_value` AS `__quiver_value_3`
  FROM `__quiver_stage_2` AS `__quiver_label`
  LEFT JOIN `__quiver_latest_3` AS `__quiver_latest_3` ON `__quiver_latest_3`.`__quiver_key_0` = `__quiver_label`.`user_id` AND `__quiver_latest_3`.`__quiver_key_1` = `__quiver_label`.`merchant_id`
)
SELECT
  `__quiver_label`.`user_id`,
  `__quiver_label`.`merchant_id`,
  `__quiver_label`.`__quiver_value_0` AS `amount_7d`,
  `__quiver_label`.`__quiver_value_1` AS `count_7d`,
  `__quiver_label`.`__quiver_value_2` AS `country`,
  `__quiver_label`.`__quiver_value_3` AS `pair_count`,
  `__quiver_label`.`is_fraud` AS `label`,
  `__quiver_label`.`__quiver_row_id`
FROM `__quiver_stage_3` AS `__quiver_label`
