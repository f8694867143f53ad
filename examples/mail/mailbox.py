#!/usr/bin/env python3
"""A tiny mail client for examples/mail/run.sh, on Python's standard library only (imaplib,
smtplib, email): what any IMAP/SMTP client would do, so the demo needs nothing installed beyond
the test command's packages. TEST servers on loopback (scripts/mail-harness.sh); the CA file is
the harness's test CA.

  mailbox.py read --env ENV --user ADDR --password PW --nth N --out DIR [--timeout S]
      Waits until ADDR's INBOX holds at least N mails, then reads the N-th (in UID order) over
      IMAPS without marking it read: prints its decoded headers, the start of its text and its
      attachments, and saves the attachments in DIR as part-K.EXT (never under the mail's own
      file names). Exit 1 if N mails do not arrive within the timeout.
  mailbox.py folders --env ENV --user ADDR --password PW [--until-empty FOLDER]
      Prints the mail count of each of ADDR's folders, once FOLDER (if given) is empty.
  mailbox.py send --env ENV --from ADDR --from-name NAME --to ADDR --subject S --text T FILE...
      Mails FILEs (attached) through the relay: STARTTLS, AUTH with the relay's submission
      account, envelope sender ADDR.
"""
import argparse
import email
import email.policy
import email.utils
import imaplib
import mimetypes
import os
import re
import smtplib
import ssl
import sys
import time
import unicodedata
from email.message import EmailMessage


def load_env(path):
    """The KEY=VALUE lines scripts/mail-harness.sh writes (no quoting is needed for its values
    as this demo uses them: ports, a /tmp path, addresses, passwords)."""
    env = {}
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith('#') and '=' in line:
                key, value = line.split('=', 1)
                env[key] = value
    return env


def printable(text, limit=200):
    """Text from a mail, safe for a terminal: control and bidi-formatting characters shown as
    U+FFFD, cut at `limit` characters."""
    text = ''.join('\ufffd' if unicodedata.category(c) in ('Cc', 'Cf') else c for c in str(text))
    return text if len(text) <= limit else text[:limit] + '…'


def tls(env):
    return ssl.create_default_context(cafile=env['MAIL_CA'])


def read(args, env):
    deadline = time.monotonic() + args.timeout
    count = 0
    while True:
        try:
            with imaplib.IMAP4_SSL(env['MAIL_HOST'], int(env['MAIL_IMAPS_PORT']),
                                   ssl_context=tls(env), timeout=10) as imap:
                imap.login(args.user, args.password)
                typ, data = imap.select('INBOX', readonly=True)
                count = int(data[0]) if typ == 'OK' else 0
                if count >= args.nth:
                    typ, uids = imap.uid('SEARCH', None, 'ALL')
                    uid = uids[0].split()[args.nth - 1]
                    typ, got = imap.uid('FETCH', uid, '(BODY.PEEK[])')
                    raw = next(part[1] for part in got if isinstance(part, tuple))
                    show(raw, args.out)
                    return 0
        except (OSError, imaplib.IMAP4.error) as e:
            print(f'  (mailbox not readable yet: {e})', file=sys.stderr)
        if time.monotonic() > deadline:
            print(f'{args.user}: {count} mail(s) after {args.timeout} s, waited for {args.nth}',
                  file=sys.stderr)
            return 1
        time.sleep(0.5)


def folders(args, env):
    """Prints each folder's mail count; with --until-empty, first waits until that folder is
    empty (the node moves what it took in out of its INBOX)."""
    deadline = time.monotonic() + args.timeout
    while True:
        with imaplib.IMAP4_SSL(env['MAIL_HOST'], int(env['MAIL_IMAPS_PORT']),
                               ssl_context=tls(env), timeout=10) as imap:
            imap.login(args.user, args.password)
            typ, listed = imap.list()
            counts = {}
            for line in listed:
                name = line.decode('utf-8', 'replace').rsplit(' ', 1)[-1].strip('"')
                typ, data = imap.select(f'"{name}"', readonly=True)
                counts[name] = int(data[0]) if typ == 'OK' else 0
        if not args.until_empty or counts.get(args.until_empty, 0) == 0:
            print('  ' + ', '.join(f'{name}: {n}' for name, n in sorted(counts.items())))
            return 0
        if time.monotonic() > deadline:
            print(f'{args.user}/{args.until_empty} still holds {counts[args.until_empty]} mail(s) '
                  f'after {args.timeout} s', file=sys.stderr)
            return 1
        time.sleep(0.5)


def show(raw, out):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    raw_subject = re.search(rb'(?im)^subject:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*', raw)
    print(f'  Subject:  {printable(msg["Subject"])}')
    if raw_subject:
        wire = re.sub(r'\s+', ' ', raw_subject.group(0).decode('ascii', 'replace'))
        print(f'            (on the wire, RFC 2047: {printable(wire, 70)})')
    for name in ('From', 'To', 'Date', 'Message-ID', 'Auto-Submitted'):
        if msg[name] is not None:
            print(f'  {name + ":":<9} {printable(msg[name])}')
    for name, value in msg.items():
        if name.lower().startswith('x-'):
            print(f'  {name}: {printable(value)}')
    body = msg.get_body(preferencelist=('plain',))
    if body is not None:
        lines = [l for l in body.get_content().splitlines() if l.strip()]
        print('  Text:')
        for line in lines[:8]:
            print(f'    {printable(line, 100)}')
        if len(lines) > 8:
            print(f'    … ({len(lines) - 8} more lines)')
    os.makedirs(out, exist_ok=True)
    for k, part in enumerate(msg.iter_attachments(), 1):
        data = part.get_payload(decode=True) or b''
        name = part.get_filename() or ''
        ext = os.path.splitext(name)[1].lower()
        if not re.fullmatch(r'\.[a-z0-9]{1,10}', ext):
            ext = mimetypes.guess_extension(part.get_content_type()) or '.bin'
        path = os.path.join(out, f'part-{k}{ext}')
        with open(path, 'wb') as f:
            f.write(data)
        print(f'  Attachment {k}: {printable(name, 100)!s} ({part.get_content_type()}, '
              f'{len(data)} bytes) -> {path}')


def send(args, env):
    msg = EmailMessage()
    msg['From'] = email.utils.formataddr((args.from_name, getattr(args, 'from')))
    msg['To'] = args.to
    msg['Subject'] = args.subject
    msg['Date'] = email.utils.formatdate(localtime=True)
    msg['Message-ID'] = email.utils.make_msgid(domain=getattr(args, 'from').split('@')[1])
    msg.set_content(args.text)
    for path in args.files:
        ctype = mimetypes.guess_type(path)[0] or 'application/octet-stream'
        if path.endswith('.edxml'):
            ctype = 'application/xml'
        maintype, subtype = ctype.split('/', 1)
        with open(path, 'rb') as f:
            msg.add_attachment(f.read(), maintype=maintype, subtype=subtype,
                               filename=os.path.basename(path))
    with smtplib.SMTP(env['MAIL_HOST'], int(env['MAIL_SMTP_PORT']), timeout=30) as smtp:
        smtp.starttls(context=tls(env))
        smtp.login(env['MAIL_SMTP_USER'], env['MAIL_SMTP_PASSWORD'])
        refused = smtp.send_message(msg, from_addr=getattr(args, 'from'), to_addrs=[args.to])
    if refused:
        print(f'refused by the relay: {refused}', file=sys.stderr)
        return 1
    print(f'  the relay accepted it (Message-ID {msg["Message-ID"]})')
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    r = sub.add_parser('read')
    r.add_argument('--env', required=True)
    r.add_argument('--user', required=True)
    r.add_argument('--password', required=True)
    r.add_argument('--nth', type=int, default=1)
    r.add_argument('--out', required=True)
    r.add_argument('--timeout', type=float, default=90)
    f = sub.add_parser('folders')
    f.add_argument('--env', required=True)
    f.add_argument('--user', required=True)
    f.add_argument('--password', required=True)
    f.add_argument('--until-empty', default=None)
    f.add_argument('--timeout', type=float, default=90)
    s = sub.add_parser('send')
    s.add_argument('--env', required=True)
    s.add_argument('--from', required=True)
    s.add_argument('--from-name', required=True)
    s.add_argument('--to', required=True)
    s.add_argument('--subject', required=True)
    s.add_argument('--text', required=True)
    s.add_argument('files', nargs='*')
    args = p.parse_args()
    env = load_env(args.env)
    return {'read': read, 'folders': folders, 'send': send}[args.cmd](args, env)


if __name__ == '__main__':
    sys.exit(main())
