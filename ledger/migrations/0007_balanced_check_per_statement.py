"""The balanced-journal check runs once per statement; ``ledger_post`` inserts a journal's
entries with one INSERT.

The deferred row-level constraint trigger of 0003 fired once per entry at commit and
re-summed that entry's whole journal: at month-end capitalisation (two million entries in
journals of 33) that was a third of the commit time, and every posting paid it per leg.
``ledger_entry_balanced`` is now an AFTER INSERT ... FOR EACH STATEMENT trigger with a
transition table: it sums every journal the statement touched, once, and refuses the
statement if one of them does not net to zero per currency. That is stricter than the
deferred check (an unbalanced journal is refused at the statement, not at commit), so every
writer must insert a journal's entries in one statement: ``ledger_post`` (below) and
``ledger.bulk.bulk_post`` (always did) do. Same error: ``ledger.unbalanced_journal``,
SQLSTATE 23514.
"""

import importlib

from django.db import migrations

_previous = importlib.import_module("ledger.migrations.0006_office_balances_deferred")
SIGNATURE = _previous.SIGNATURE

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
    v_afters bigint[] := '{}';
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

    -- Balances move leg by leg (the running balance of an account with two legs counts
    -- both); the entries then go in with one INSERT, which the statement-level balanced
    -- check sees whole.
    FOR i IN 1 .. n LOOP
        IF p_accounts[i] = ANY (v_office) THEN
            v_after := NULL;
        ELSE
            UPDATE ledger_balance b
               SET ledger_minor = b.ledger_minor
                       + CASE WHEN p_sides[i] = 'C' THEN p_amounts[i] ELSE -p_amounts[i] END,
                   last_activity_on = CASE WHEN p_check_status
                                           THEN greatest(b.last_activity_on, p_business_date)
                                           ELSE b.last_activity_on END
             WHERE b.account_id = p_accounts[i]
            RETURNING b.ledger_minor INTO v_after;
        END IF;
        v_afters := v_afters || v_after;
    END LOOP;
    IF cardinality(v_office) > 0 THEN
        INSERT INTO ledger_balance_pending (account_id, delta_minor)
        SELECT l.acc, CASE WHEN l.s = 'C' THEN l.amt ELSE -l.amt END
          FROM unnest(p_accounts, p_sides, p_amounts) AS l(acc, s, amt)
         WHERE l.acc = ANY (v_office);
    END IF;
    INSERT INTO ledger_entry (journal_id, account_id, side, amount_minor, currency,
                              business_date, balance_after_minor, purpose)
    SELECT v_journal, l.acc, l.s, l.amt, p_currency, p_business_date, l.aft, l.pur
      FROM unnest(p_accounts, p_sides, p_amounts, v_afters, p_purposes)
           WITH ORDINALITY AS l(acc, s, amt, aft, pur, ord)
     ORDER BY l.ord;

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

BALANCED = r"""
DROP TRIGGER ledger_entry_balanced ON ledger_entry;
DROP FUNCTION ledger_check_journal_balanced();

CREATE FUNCTION ledger_check_journals_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    -- LATERAL: each touched journal is summed through entry_journal_idx, whatever the
    -- planner guesses of the transition table (no statistics), never by scanning entries.
    SELECT j.journal_id, x.currency, x.net
      INTO bad
      FROM (SELECT DISTINCT a.journal_id FROM added a) j
     CROSS JOIN LATERAL (
           SELECT e.currency,
                  sum(CASE e.side WHEN 'C' THEN e.amount_minor ELSE -e.amount_minor END) AS net
             FROM ledger_entry e
            WHERE e.journal_id = j.journal_id
         GROUP BY e.currency) x
     WHERE x.net <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger.unbalanced_journal'
            USING ERRCODE = '23514',
                  DETAIL = format('journal %s nets %s minor units of %s, not zero',
                                  bad.journal_id, bad.net, bad.currency);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER ledger_entry_balanced
    AFTER INSERT ON ledger_entry
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_journals_balanced();
"""

# 0003's deferred row-level check, for the way back.
BALANCED_REVERSE = r"""
DROP TRIGGER ledger_entry_balanced ON ledger_entry;
DROP FUNCTION ledger_check_journals_balanced();

CREATE FUNCTION ledger_check_journal_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT currency,
           SUM(CASE side WHEN 'C' THEN amount_minor ELSE -amount_minor END) AS net
      INTO bad
      FROM ledger_entry
     WHERE journal_id = NEW.journal_id
  GROUP BY currency
    HAVING SUM(CASE side WHEN 'C' THEN amount_minor ELSE -amount_minor END) <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger.unbalanced_journal'
            USING ERRCODE = '23514',
                  DETAIL = format('journal %s nets %s minor units of %s, not zero',
                                  NEW.journal_id, bad.net, bad.currency);
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER ledger_entry_balanced
    AFTER INSERT ON ledger_entry
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_journal_balanced();
"""

FORWARD = f"DROP FUNCTION ledger_post{SIGNATURE};\n{FUNCTION}\n{BALANCED}"
REVERSE = (
    f"{BALANCED_REVERSE}\nDROP FUNCTION ledger_post{SIGNATURE};\n{_previous.FUNCTION}"
)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0006_office_balances_deferred")]

    operations = [migrations.RunSQL(sql=FORWARD, reverse_sql=REVERSE)]
