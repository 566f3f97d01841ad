"""``limits_consume`` answers a debit that fits without reading the usage rows back.

The common case (every applicable rule has room) ran a final query joining the rules and the
usage rows to report what it had just written. The rules' terms are now collected with the
candidate rules, and the upsert returns the new usage, so a debit that fits costs the
account read, the rule selection and the upsert. A breach still reads the usage back after
giving the debit back (it is the locked, current usage the refusal reports). The function
keeps ``plan_cache_mode = force_generic_plan`` (0003) in its definition.
"""

import importlib

from django.db import migrations

SIGNATURE = "(bigint, text, bigint, text, text, date, boolean)"

FUNCTION = r"""
CREATE OR REPLACE FUNCTION limits_consume(
    p_account_id bigint,
    p_currency text,
    p_amount_minor bigint,
    p_channel text,
    p_txn_type text,
    p_business_date date,
    p_enforce boolean
) RETURNS TABLE (
    rule_id bigint,
    subject_id bigint,
    on_breach text,
    max_amount_minor bigint,
    max_count integer,
    used_amount_minor bigint,
    used_count integer,
    consumed boolean
)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
    v_kind text;
    v_product bigint;
    v_customer bigint;
    v_rules bigint[];
    v_subjects bigint[];
    v_on_breach text[];
    v_max_amount bigint[];
    v_max_count integer[];
    v_taken bigint[];
    v_used_amount bigint[];
    v_used_count integer[];
    i integer;
BEGIN
    SELECT a.kind, a.product_id, a.customer_id
      INTO v_kind, v_product, v_customer
      FROM accounts_account a
     WHERE a.id = p_account_id;
    -- Office (GL) accounts are the bank's own books: never limited.
    IF NOT FOUND OR v_kind <> 'customer' THEN
        RETURN;
    END IF;

    WITH candidate AS (
        SELECT r.id, r.is_override, r.customer_id, r.on_breach, r.max_amount_minor,
               r.max_count
          FROM limits_limitrule r
         WHERE r.is_active
           AND r.currency = p_currency
           AND r.channel IN ('', p_channel)
           AND r.txn_type IN ('', p_txn_type)
           AND (r.account_id = p_account_id
                OR r.product_id = v_product
                OR r.customer_id = v_customer
                OR (r.account_id IS NULL AND r.product_id IS NULL AND r.customer_id IS NULL))
    )
    SELECT array_agg(c.id ORDER BY c.id),
           -- A customer-wide rule counts all the customer's accounts together.
           array_agg(CASE WHEN c.customer_id IS NULL THEN p_account_id ELSE v_customer END
                     ORDER BY c.id),
           array_agg(c.on_breach::text ORDER BY c.id),
           array_agg(c.max_amount_minor ORDER BY c.id),
           array_agg(c.max_count ORDER BY c.id)
      INTO v_rules, v_subjects, v_on_breach, v_max_amount, v_max_count
      FROM candidate c
     -- An applicable override replaces every other rule; otherwise all rules apply.
     WHERE c.is_override = EXISTS (SELECT 1 FROM candidate o WHERE o.is_override);
    IF v_rules IS NULL THEN
        RETURN;
    END IF;

    WITH taken AS (
        INSERT INTO limits_limitusage AS u
               (rule_id, subject_id, business_date, used_amount_minor, used_count)
        SELECT w.rule_id, w.subject_id, p_business_date, p_amount_minor, 1
          FROM unnest(v_rules, v_subjects, v_max_amount)
               AS w(rule_id, subject_id, max_amount_minor)
         -- The first debit of the day is checked here; later ones in the WHERE below.
         WHERE NOT p_enforce
            OR w.max_amount_minor IS NULL
            OR p_amount_minor <= w.max_amount_minor
         ORDER BY w.rule_id
        ON CONFLICT ON CONSTRAINT limitusage_one_per_day DO UPDATE
           SET used_amount_minor = u.used_amount_minor + EXCLUDED.used_amount_minor,
               used_count = u.used_count + 1
         WHERE NOT p_enforce
            OR (SELECT (lim.max_amount_minor IS NULL
                        OR u.used_amount_minor + EXCLUDED.used_amount_minor
                           <= lim.max_amount_minor)
                   AND (lim.max_count IS NULL OR u.used_count + 1 <= lim.max_count)
                  FROM limits_limitrule lim
                 WHERE lim.id = u.rule_id)
        RETURNING u.rule_id, u.used_amount_minor, u.used_count
    )
    SELECT array_agg(t.rule_id ORDER BY t.rule_id),
           array_agg(t.used_amount_minor ORDER BY t.rule_id),
           array_agg(t.used_count ORDER BY t.rule_id)
      INTO v_taken, v_used_amount, v_used_count
      FROM taken t;

    IF coalesce(cardinality(v_taken), 0) = cardinality(v_rules) THEN
        -- Every rule took the debit: report the usage the upsert returned, rule by rule
        -- (both arrays are in ascending rule id, one entry per rule).
        FOR i IN 1 .. cardinality(v_rules) LOOP
            rule_id := v_rules[i];
            subject_id := v_subjects[i];
            on_breach := v_on_breach[i];
            max_amount_minor := v_max_amount[i];
            max_count := v_max_count[i];
            used_amount_minor := v_used_amount[i];
            used_count := v_used_count[i];
            consumed := true;
            RETURN NEXT;
        END LOOP;
        RETURN;
    END IF;

    IF v_taken IS NOT NULL THEN
        -- A breach: give back what the other rules took (their rows are locked by us already).
        UPDATE limits_limitusage u
           SET used_amount_minor = u.used_amount_minor - p_amount_minor,
               used_count = u.used_count - 1
         WHERE u.business_date = p_business_date
           AND (u.rule_id, u.subject_id) IN (
                SELECT w.rule_id, w.subject_id
                  FROM unnest(v_rules, v_subjects) AS w(rule_id, subject_id)
                 WHERE w.rule_id = ANY (v_taken));
    END IF;

    RETURN QUERY
    SELECT w.rule_id, w.subject_id, w.on_breach, w.max_amount_minor, w.max_count,
           coalesce(u.used_amount_minor, 0::bigint), coalesce(u.used_count, 0), false
      FROM unnest(v_rules, v_subjects, v_on_breach, v_max_amount, v_max_count)
           AS w(rule_id, subject_id, on_breach, max_amount_minor, max_count)
      LEFT JOIN limits_limitusage u
             ON u.rule_id = w.rule_id
            AND u.subject_id = w.subject_id
            AND u.business_date = p_business_date
     ORDER BY w.rule_id;
END;
$$;
"""

_previous_function = importlib.import_module(
    "limits.migrations.0002_limits_consume_function"
).FORWARD


class Migration(migrations.Migration):
    dependencies = [("limits", "0003_limits_consume_generic_plans")]

    operations = [
        migrations.RunSQL(
            sql=FUNCTION,
            # 0002's body (CREATE FUNCTION, so drop first), with 0003's setting.
            reverse_sql=(
                f"DROP FUNCTION limits_consume{SIGNATURE};\n{_previous_function}\n"
                f"ALTER FUNCTION limits_consume{SIGNATURE} "
                "SET plan_cache_mode = force_generic_plan;"
            ),
        )
    ]
