#!/usr/bin/env python3
"""Where the mallocs of a folded malloc-probe profile (resolve.py) come from:
the innermost geokv frame and the innermost non-std frame of each stack.
usage: malloc-sites.py FOLDED [N]"""
import sys, collections, re
own=collections.Counter(); crate=collections.Counter(); tot=0
skip=re.compile(r'^(alloc::|core::|std::|<alloc::|<core::|<std::|malloc|operator new|__rust|hashbrown|\[unknown|_\w)')
for line in open(sys.argv[1]):
    st,n=line.rstrip().rsplit(' ',1); n=int(n); tot+=n
    fr=st.split(';')[::-1]  # innermost first
    o=next((f for f in fr if f.startswith('geokv::') or f.startswith('<geokv::')),'(no geokv frame)')
    own[re.sub(r'<[^<>]*>','',o)[:150]]+=n
    c=next((f for f in fr if not skip.match(f)),'?')
    crate[c[:150]]+=n
print('total',tot)
print('--- innermost geokv frame')
for k,v in own.most_common(int(sys.argv[2]) if len(sys.argv)>2 else 40): print('%5.1f%% %s'%(100*v/tot,k))
print('--- innermost non-std frame')
for k,v in crate.most_common(int(sys.argv[2]) if len(sys.argv)>2 else 40): print('%5.1f%% %s'%(100*v/tot,k))
