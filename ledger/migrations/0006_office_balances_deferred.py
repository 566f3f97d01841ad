"""Office (GL) balances move through folded deltas; postings no longer lock their rows.

Every transfer with a fee credited the one fee-income balance row, which ``ledger_post``
locked until commit, so such transfers ran one at a time (docs/architecture.md, "Office
balances"). From here ``ledger_post`` locks, checks and updates customer balance rows as
before, but for an office account it appends a row to ``ledger_balance_pending`` and writes
the entry with no running balance. ``ledger_office_fold()`` moves committed deltas into
``ledger_balance`` in ascending account id (the lock order of every other writer). Also: the
rule-checking loop reads accounts in ascending id, so the refusal reported for a movement
that breaks two rules is always the same one.
"""

import importlib

from django.db import migrations, models

# 0004's function, for the way back.
PREVIOUS_FUNCTION = importlib.import_module(
    "ledger.migrations.0004_ledger_post_writes_outbox_event"
).NEW_FUNCTION

SIGNATURE = """(bigint, text, text, date, timestamptz, text, integer, integer, bigint, jsonb, text,
                bigint[], text[], bigint[], text[], boolean, boolean, bigint[], jsonb)"""

FUNCTION = r"""
CREATE FUNCTION ledger_post(
    p_journal_id bigint,        -- NULL: new journal; else the id of an *entered* journal
    p_txn_type text,
    p_channel text,
    p_business_date date,
    p_now timestamptz,
    p_narration text,
    p_maker_id integer,
    p_checker_id integer,
    p_reversal_of bigint,
    p_details jsonb,
    p_currency text,
    p_accounts bigint[],
    p_sides text[],
    p_amounts bigint[],
    p_purposes text[],
    p_check_status boolean,     -- customer rules on frozen/dormant (closed is always refused)
    p_check_funds boolean,      -- debits must fit available balance above the minimum
    p_consume_holds bigint[],   -- holds this posting uses up (maker-checker approval)
    p_event jsonb DEFAULT NULL  -- the outbox event announcing this posting
) RETURNS TABLE (journal_id bigint, txn_id text)
LANGUAGE plpgsql AS $$
DECLARE
    n integer := coalesce(array_length(p_accounts, 1), 0);
    v_ids bigint[];
    v_seen integer := 0;
    v_office bigint[] := '{}';
    r record;
    v_net bigint;
    v_debit boolean;
    v_credit boolean;
    v_journal bigint;
    v_txn text;
    v_after bigint;
    v_delta bigint;
    i integer;
    v_numbers jsonb := '{}'::jsonb;
    v_legs jsonb := '[]'::jsonb;
    v_scale numeric;
    v_exponent integer;
    v_data jsonb;
BEGIN
    IF n < 2 OR n <> coalesce(array_length(p_sides, 1), 0)
       OR n <> coalesce(array_length(p_amounts, 1), 0)
       OR n <> coalesce(array_length(p_purposes, 1), 0) THEN
        RAISE EXCEPTION 'ledger.malformed_legs' USING DETAIL = '{}';
    END IF;

    SELECT array_agg(DISTINCT a ORDER BY a) INTO v_ids FROM unnest(p_accounts) AS a;

    -- Lock order is ascending account id for every writer, so transfers cannot deadlock.
    -- Office rows are not locked: their balance moves through ledger_balance_pending.
    PERFORM 1 FROM ledger_balance b
      WHERE b.account_id = ANY (v_ids) AND NOT b.is_office
      ORDER BY b.account_id
      FOR UPDATE;

    IF p_consume_holds IS NOT NULL AND array_length(p_consume_holds, 1) > 0 THEN
        WITH used AS (
            UPDATE ledger_hold h SET status = 'consumed', released_at = p_now
             WHERE h.id = ANY (p_consume_holds) AND h.status = 'active'
               AND h.account_id = ANY (v_ids)
            RETURNING h.account_id, h.amount_minor
        ), per_account AS (
            SELECT u.account_id, sum(u.amount_minor) AS amount FROM used u GROUP BY u.account_id
        )
        UPDATE ledger_balance b SET held_minor = b.held_minor - pa.amount
          FROM per_account pa WHERE b.account_id = pa.account_id;
    END IF;

    FOR r IN
        SELECT b.account_id, b.currency, b.ledger_minor, b.held_minor, b.min_balance_minor,
               b.overdraft_limit_minor, b.is_office, a.status, a.freeze_type, a.account_number
          FROM ledger_balance b JOIN accounts_account a ON a.id = b.account_id
         WHERE b.account_id = ANY (v_ids)
         ORDER BY b.account_id
    LOOP
        v_seen := v_seen + 1;
        IF r.is_office THEN
            v_office := v_office || r.account_id;
        END IF;
        IF p_event IS NOT NULL THEN
            v_numbers := v_numbers || jsonb_build_object(r.account_id::text, r.account_number);
        END IF;
        IF r.currency <> p_currency THEN
            RAISE EXCEPTION 'ledger.currency_mismatch' USING DETAIL = json_build_object(
                'account', r.account_number, 'account_currency', r.currency,
                'currency', p_currency)::text;
        END IF;
        SELECT coalesce(sum(CASE WHEN l.s = 'C' THEN l.amt ELSE -l.amt END), 0),
               coalesce(bool_or(l.s = 'D'), false), coalesce(bool_or(l.s = 'C'), false)
          INTO v_net, v_debit, v_credit
          FROM unnest(p_accounts, p_sides, p_amounts) AS l(acc, s, amt)
         WHERE l.acc = r.account_id;
        IF r.status = 'closed' THEN
            RAISE EXCEPTION 'account.closed'
                USING DETAIL = json_build_object('account', r.account_number)::text;
        END IF;
        IF p_check_status THEN
            IF r.status = 'frozen' AND (r.freeze_type = 'total'
                   OR (r.freeze_type = 'debit' AND v_debit)
                   OR (r.freeze_type = 'credit' AND v_credit)) THEN
                RAISE EXCEPTION 'account.frozen' USING DETAIL = json_build_object(
                    'account', r.account_number, 'freeze_type', r.freeze_type)::text;
            END IF;
            IF r.status = 'dormant' AND v_debit THEN
                RAISE EXCEPTION 'account.dormant'
                    USING DETAIL = json_build_object('account', r.account_number)::text;
            END IF;
        END IF;
        -- available = ledger - held + overdraft; a debit must leave at least the minimum.
        IF p_check_funds AND v_net < 0 AND NOT r.is_office
           AND r.ledger_minor + v_net - r.held_minor + r.overdraft_limit_minor
               < r.min_balance_minor THEN
            RAISE EXCEPTION 'ledger.insufficient_funds' USING DETAIL = json_build_object(
                'account', r.account_number,
                'available_minor', r.ledger_minor - r.held_minor + r.overdraft_limit_minor,
                'min_balance_minor', r.min_balance_minor,
                'requested_minor', -v_net)::text;
        END IF;
    END LOOP;
    IF v_seen <> array_length(v_ids, 1) THEN
        RAISE EXCEPTION 'account.not_found' USING DETAIL = '{}';
    END IF;

    IF p_journal_id IS NULL THEN
        INSERT INTO ledger_journal (txn_id, txn_type, channel, status, business_date,
                                    entered_at, posted_at, narration, maker_id, checker_id,
                                    reversal_of_id, details)
        VALUES ('T' || lpad(nextval('ledger_txn_seq')::text, 12, '0'), p_txn_type, p_channel,
                'posted', p_business_date, p_now, p_now, coalesce(p_narration, ''),
                p_maker_id, p_checker_id, p_reversal_of, coalesce(p_details, '{}'::jsonb))
        RETURNING ledger_journal.id, ledger_journal.txn_id INTO v_journal, v_txn;
    ELSE
        UPDATE ledger_journal j
           SET status = 'posted', posted_at = p_now, checker_id = p_checker_id,
               business_date = p_business_date
         WHERE j.id = p_journal_id AND j.status = 'entered'
        RETURNING j.id, j.txn_id INTO v_journal, v_txn;
        IF v_journal IS NULL THEN
            RAISE EXCEPTION 'ledger.journal_not_pending'
                USING DETAIL = json_build_object('journal_id', p_journal_id)::text;
        END IF;
    END IF;

    FOR i IN 1 .. n LOOP
        v_delta := CASE WHEN p_sides[i] = 'C' THEN p_amounts[i] ELSE -p_amounts[i] END;
        IF p_accounts[i] = ANY (v_office) THEN
            INSERT INTO ledger_balance_pending (account_id, delta_minor)
            VALUES (p_accounts[i], v_delta);
            v_after := NULL;
        ELSE
            UPDATE ledger_balance b
               SET ledger_minor = b.ledger_minor + v_delta,
                   last_activity_on = CASE WHEN p_check_status
                                           THEN greatest(b.last_activity_on, p_business_date)
                                           ELSE b.last_activity_on END
             WHERE b.account_id = p_accounts[i]
            RETURNING b.ledger_minor INTO v_after;
        END IF;
        INSERT INTO ledger_entry (journal_id, account_id, side, amount_minor, currency,
                                  business_date, balance_after_minor, purpose)
        VALUES (v_journal, p_accounts[i], p_sides[i], p_amounts[i], p_currency,
                p_business_date, v_after, p_purposes[i]);
    END LOOP;

    -- The event is written by this same statement: announcing a posting costs no round trip.
    -- The caller gives type, source, sequence and data; the journal's identity and its legs
    -- (account numbers, amounts as decimal strings in the currency's exponent) are known
    -- only here. ``nest`` puts them under that key instead (a reversal announces itself on
    -- the original transaction, whose txn_id the caller gives as aggregate_id).
    IF p_event IS NOT NULL THEN
        v_exponent := coalesce((p_event->>'exponent')::integer, 2);
        v_scale := power(10::numeric, v_exponent);
        FOR i IN 1 .. n LOOP
            v_legs := v_legs || jsonb_build_array(jsonb_build_object(
                'account', v_numbers->>(p_accounts[i]::text),
                'side', p_sides[i],
                'amount', round(p_amounts[i]::numeric / v_scale, v_exponent)::text,
                'purpose', p_purposes[i]));
        END LOOP;
        v_data := jsonb_build_object('txn_id', v_txn, 'journal_id', v_journal,
                                     'currency', p_currency, 'legs', v_legs);
        IF p_event ? 'nest' THEN
            v_data := jsonb_build_object(p_event->>'nest', v_data);
        END IF;
        PERFORM outbox_enqueue(
            p_event->>'type', p_event->>'source', 'transaction',
            coalesce(p_event->>'aggregate_id', v_txn), (p_event->>'sequence')::bigint,
            p_now, p_business_date, coalesce(p_event->'data', '{}'::jsonb) || v_data);
    END IF;

    journal_id := v_journal;
    txn_id := v_txn;
    RETURN NEXT;
END;
$$;
"""

# Moves every committed delta into its balance row; returns how many deltas it folded. The
# advisory lock makes concurrent folds queue (each then sees only what the last left), and
# rows are updated in ascending account id like every other writer of ledger_balance. A
# delta whose posting has not committed is invisible to the DELETE and waits for the next
# fold, so nothing is counted twice or lost.
FOLD_FUNCTION = r"""
CREATE FUNCTION ledger_office_fold() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_folded bigint := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('ledger_office_fold'));
    FOR r IN
        WITH taken AS (
            DELETE FROM ledger_balance_pending RETURNING account_id, delta_minor
        )
        SELECT t.account_id, sum(t.delta_minor) AS delta, count(*) AS deltas
          FROM taken t GROUP BY t.account_id ORDER BY t.account_id
    LOOP
        UPDATE ledger_balance b SET ledger_minor = b.ledger_minor + r.delta
         WHERE b.account_id = r.account_id;
        v_folded := v_folded + r.deltas;
    END LOOP;
    RETURN v_folded;
END;
$$;
"""

FORWARD = f"DROP FUNCTION ledger_post{SIGNATURE};\n{FUNCTION}\n{FOLD_FUNCTION}"
REVERSE = (
    "SELECT ledger_office_fold();\n"
    "DROP FUNCTION ledger_office_fold();\n"
    f"DROP FUNCTION ledger_post{SIGNATURE};\n{PREVIOUS_FUNCTION}"
)


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0005_drop_redundant_posting_indexes'),
    ]

    operations = [
        migrations.CreateModel(
            name='OfficeBalanceDelta',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('account_id', models.BigIntegerField()),
                ('delta_minor', models.BigIntegerField()),
            ],
            options={
                'db_table': 'ledger_balance_pending',
            },
        ),
        migrations.AlterField(
            model_name='entry',
            name='balance_after_minor',
            field=models.BigIntegerField(null=True),
        ),
        migrations.RunSQL(sql=FORWARD, reverse_sql=REVERSE),
    ]
