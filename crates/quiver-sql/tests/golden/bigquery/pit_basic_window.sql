WITH `__quiver_label` AS (
  SELECT `user_id`, `ts`, `is_fraud`, ROW_NUMBER() OVER (ORDER BY `user_id` ASC NULLS LAST, `ts` ASC NULLS LAST, `is_fraud` ASC NULLS LAST) AS `__quiver_row_id` FROM `analytics`.`labels` AS `__quiver_label`
),
`__quiver_stage_0` AS (
  SELECT `__quiver_label`.`user_id`, `__quiver_label`.`ts`, `__quiver_label`.`is_fraud`, `__quiver_label`.`__quiver_row_id`, `__quiver_source`.`amount_7d` AS `__quiver_value_0`
  FROM `__quiver_label` AS `__quiver_label`
  LEFT JOIN `analytics`.`user_features` AS `__quiver_source` ON `__quiver_source`.`user_id` = `__quiver_label`.`user_id` AND CAST(`__quiver_source`.`ts` AS TIMESTAMP) <= CAST(`__quiver_label`.`ts` AS TIMESTAMP)
  WHERE TRUE
  QUALIFY ROW_NUMBER() OVER (PARTITION BY `__quiver_label`.`__quiver_row_id` ORDER BY `__quiver_source`.`ts` DESC NULLS LAST, `__quiver_source`.`amount_7d` DESC NULLS LAST) = 1
)
SELECT
  `__quiver_label`.`user_id`,
  `__quiver_label`.`ts`,
  `__quiver_label`.`__quiver_value_0` AS `amount_7d`,
  `__quiver_label`.`is_fraud` AS `label`,
  `__quiver_label`.`__quiver_row_id`
FROM `__quiver_stage_0` AS `__quiver_label`
