"""``limits_consume(...)``: choose the rules of a debit and consume all of them in one round trip.

Called once per limited debit (``limits.services.limit_consume``) inside the posting
transaction. It reads the account, selects the applicable active rules (an applicable override
replaces the account's other rules), then checks and increments every rule's usage row for
the business date in ONE ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` statement: the first
debit of the day inserts the row (checked against the limit in the SELECT), later ones add to
it only while it stays within the limit. The upsert takes the usage row's lock, so concurrent
debits queue on it and each sees the previous one's total: no read-then-write race. Rows are
upserted in ascending rule id, so two debits sharing several rules lock them in the same order.

If any rule has no room, the rules that did take the debit are given it back in the same call
(nothing stays consumed, and the caller's transaction is not aborted, so a breach that routes
to maker-checker can continue) and every rule is returned with ``consumed = false`` and its
usage before this debit. ``p_enforce = false`` records the debit without checking (an item a
checker approved despite a limit).
"""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION limits_consume(
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
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_kind text;
    v_product bigint;
    v_customer bigint;
    v_rules bigint[];
    v_subjects bigint[];
    v_taken bigint[];
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
        SELECT r.id, r.is_override, r.customer_id
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
                     ORDER BY c.id)
      INTO v_rules, v_subjects
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
          FROM unnest(v_rules, v_subjects) AS w(rule_id, subject_id)
          JOIN limits_limitrule r ON r.id = w.rule_id
         -- The first debit of the day is checked here; later ones in the WHERE below.
         WHERE NOT p_enforce
            OR r.max_amount_minor IS NULL
            OR p_amount_minor <= r.max_amount_minor
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
        RETURNING u.rule_id
    )
    SELECT array_agg(t.rule_id) INTO v_taken FROM taken t;

    IF coalesce(cardinality(v_taken), 0) < cardinality(v_rules) THEN
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
    SELECT w.rule_id, w.subject_id, r.on_breach::text, r.max_amount_minor, r.max_count,
           coalesce(u.used_amount_minor, 0::bigint), coalesce(u.used_count, 0),
           coalesce(cardinality(v_taken), 0) = cardinality(v_rules)
      FROM unnest(v_rules, v_subjects) AS w(rule_id, subject_id)
      JOIN limits_limitrule r ON r.id = w.rule_id
      LEFT JOIN limits_limitusage u
             ON u.rule_id = w.rule_id
            AND u.subject_id = w.subject_id
            AND u.business_date = p_business_date
     ORDER BY w.rule_id;
END;
$$;
"""

REVERSE = r"""
DROP FUNCTION limits_consume(bigint, text, bigint, text, text, date, boolean);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("limits", "0001_limit_rules_and_daily_usage"),
    ]

    operations = [
        migrations.RunSQL(sql=FORWARD, reverse_sql=REVERSE),
    ]
