"""The database as the ledger's last line of defence, and the posting function.

* ``ledger_entry_balanced``: a DEFERRABLE INITIALLY DEFERRED constraint trigger. At commit,
  every journal that gained entries must net to zero per currency, or the commit fails.
* ``ledger_entry_immutable``: posted entries can never be updated or deleted; a correction
  is a reversal. (TRUNCATE is governed by grants: the application role does not own tables.)
* ``ledger_post(...)``: one round trip that locks the accounts' balance rows in ascending
  account-id order, applies the account rules (status, freeze type, funds including holds,
  minimum balance and overdraft), writes the journal and its entries with the running
  balance, and moves the balances. Rule failures RAISE with the stable error code as the
  message and a JSON detail, which ``ledger.posting`` maps to typed exceptions.
"""

from django.db import migrations

FORWARD = r"""
CREATE SEQUENCE ledger_txn_seq START 100000001;

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

CREATE FUNCTION ledger_refuse_entry_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger.entry_immutable'
        USING ERRCODE = '42501',
              DETAIL = format('entry %s is posted; correct it with a reversal', OLD.id);
END;
$$;

CREATE TRIGGER ledger_entry_immutable
    BEFORE UPDATE OR DELETE ON ledger_entry
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_entry_change();

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
    p_consume_holds bigint[]    -- holds this posting uses up (maker-checker approval)
) RETURNS TABLE (journal_id bigint, txn_id text)
LANGUAGE plpgsql AS $$
DECLARE
    n integer := coalesce(array_length(p_accounts, 1), 0);
    v_ids bigint[];
    v_locked integer;
    r record;
    v_net bigint;
    v_debit boolean;
    v_credit boolean;
    v_journal bigint;
    v_txn text;
    v_after bigint;
    i integer;
BEGIN
    IF n < 2 OR n <> coalesce(array_length(p_sides, 1), 0)
       OR n <> coalesce(array_length(p_amounts, 1), 0)
       OR n <> coalesce(array_length(p_purposes, 1), 0) THEN
        RAISE EXCEPTION 'ledger.malformed_legs' USING DETAIL = '{}';
    END IF;

    SELECT array_agg(DISTINCT a ORDER BY a) INTO v_ids FROM unnest(p_accounts) AS a;

    -- Lock order is ascending account id for every writer, so transfers cannot deadlock.
    PERFORM 1 FROM ledger_balance b
      WHERE b.account_id = ANY (v_ids)
      ORDER BY b.account_id
      FOR UPDATE;
    GET DIAGNOSTICS v_locked = ROW_COUNT;
    IF v_locked <> array_length(v_ids, 1) THEN
        RAISE EXCEPTION 'account.not_found' USING DETAIL = '{}';
    END IF;

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
    LOOP
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
        UPDATE ledger_balance b
           SET ledger_minor = b.ledger_minor
                   + CASE WHEN p_sides[i] = 'C' THEN p_amounts[i] ELSE -p_amounts[i] END,
               last_activity_on = CASE WHEN p_check_status AND NOT b.is_office
                                       THEN greatest(b.last_activity_on, p_business_date)
                                       ELSE b.last_activity_on END
         WHERE b.account_id = p_accounts[i]
        RETURNING b.ledger_minor INTO v_after;
        INSERT INTO ledger_entry (journal_id, account_id, side, amount_minor, currency,
                                  business_date, balance_after_minor, purpose)
        VALUES (v_journal, p_accounts[i], p_sides[i], p_amounts[i], p_currency,
                p_business_date, v_after, p_purposes[i]);
    END LOOP;

    journal_id := v_journal;
    txn_id := v_txn;
    RETURN NEXT;
END;
$$;
"""

REVERSE = r"""
DROP FUNCTION ledger_post(bigint, text, text, date, timestamptz, text, integer, integer, bigint,
                          jsonb, text, bigint[], text[], bigint[], text[], boolean, boolean,
                          bigint[]);
DROP TRIGGER ledger_entry_immutable ON ledger_entry;
DROP FUNCTION ledger_refuse_entry_change();
DROP TRIGGER ledger_entry_balanced ON ledger_entry;
DROP FUNCTION ledger_check_journal_balanced();
DROP SEQUENCE ledger_txn_seq;
"""


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_approval_thresholds_and_last_activity")]

    operations = [
        migrations.AlterModelTable(name="accountbalance", table="ledger_balance"),
        migrations.RunSQL(sql=FORWARD, reverse_sql=REVERSE),
    ]
