-- @p0: Timestamp(2024-01-01T00:00:10Z)
SELECT CAST(`__quiver_source`.`user_id` AS STRING) AS `entity`, `__quiver_source`.`v` AS `value`, CAST(`__quiver_source`.`ts` AS TIMESTAMP) AS `event_time`
FROM `analytics`.`events` AS `__quiver_source`
WHERE `__quiver_source`.`user_id` IS NOT NULL AND `__quiver_source`.`ts` IS NOT NULL AND CAST(`__quiver_source`.`ts` AS TIMESTAMP) > @p0
QUALIFY ROW_NUMBER() OVER (PARTITION BY `__quiver_source`.`user_id` ORDER BY `__quiver_source`.`ts` DESC NULLS LAST, `__quiver_source`.`created` DESC NULLS LAST, `__quiver_source`.`v` DESC NULLS LAST) = 1
