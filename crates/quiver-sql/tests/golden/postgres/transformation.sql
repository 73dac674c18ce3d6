SELECT u.name, SUM(o.amount) AS total /* not {{ here }} */ FROM "analytics"."orders" o JOIN "analytics"."users" u ON o.user_id = u.user_id WHERE u.note <> '{{ orders:v1 }}' -- nor {{ there }}
GROUP BY u.name
