#!/usr/bin/env python3
"""Shortens Rust symbols in folded stacks: <T as Trait>::f -> T::f, generic arguments dropped. usage: trim.py < folded > folded"""
import sys,re,collections
c=collections.Counter()
def trim(f):
    prev=None
    while prev!=f:
        prev=f; f=re.sub(r'<([^<>]*?) as [^<>]*>',r'\1',f); f=re.sub(r'<(?![^<>]* as )[^<>]*>','',f)
    return f
for line in sys.stdin:
    st,n=line.rstrip().rsplit(' ',1)
    c[';'.join(trim(x) or x for x in st.split(';'))]+=int(n)
for k,v in sorted(c.items()): print(k,v)
