#!/usr/bin/env python3
"""perf script (raw addresses of BIN unresolved) -> folded stacks with addr2line -i names.
usage: perf script --no-inline -i X > S; resolve.py BIN S > folded
(perf 6.1 here leaves the dev binary's frames [unknown]; addr2line -i
names them, inlined frames included)"""
import sys, re, subprocess, collections
BIN=sys.argv[1]
samples=[]; cur=None
for line in open(sys.argv[2]):
    if not line.strip():
        if cur is not None: samples.append(cur); cur=None
        continue
    if not line[0].isspace():
        cur=[]; continue
    p=line.split(None,2)
    if len(p)<2: continue
    addr=p[0]; rest=p[1] if len(p)==2 else p[1]+' '+p[2]
    m=re.search(r'\(([^)]*)\)\s*$',line)
    dso=m.group(1) if m else '?'
    sym=re.sub(r'\s*\([^)]*\)\s*$','',rest)
    cur.append((addr,dso,sym))
if cur: samples.append(cur)
addrs=set()
for s in samples:
    for a,d,sym in s:
        if d==BIN: addrs.add(a)
addrs=sorted(addrs)
# perf gives file offsets: vaddr = offset + (vaddr - offset of the
# executable LOAD segment), from readelf -lW
seg=[l.split() for l in subprocess.run(['readelf','-lW',BIN],capture_output=True,text=True).stdout.splitlines() if l.strip().startswith('LOAD') and ' R E ' in l][0]
SHIFT=int(seg[2],16)-int(seg[1],16)
inp='\n'.join(hex(int(a,16)+SHIFT) for a in addrs)+'\n'
out=subprocess.run(['addr2line','-f','-C','-i','-a','-e',BIN],input=inp,capture_output=True,text=True).stdout.splitlines()
names={}; i=0; cura=None
# output: 0xaddr, then pairs (func, file:line) repeated for inlines
res=collections.defaultdict(list)
for l in out:
    if re.fullmatch(r'0x[0-9a-f]+',l):
        cura=int(l,16); continue
    res[cura].append(l)
for a in addrs:
    v=res.get(int(a,16)+SHIFT,[])
    fr=[]
    for j in range(0,len(v),2):
        f=v[j]; loc=v[j+1] if j+1<len(v) else ''
        loc=loc.split('/')[-1]
        f=re.sub(r'::h[0-9a-f]{16}$','',f)
        fr.append(f+' ['+loc+']')
    names[a]=fr  # innermost first
c=collections.Counter()
for s in samples:
    fr=[]
    for a,d,sym in s:
        if d==BIN: fr.extend(names.get(a,['?']))
        else: fr.append(sym)
    fr.reverse()
    c[';'.join(x.replace(';',':') for x in fr)]+=1
for k,v in c.items(): print(k,v)
