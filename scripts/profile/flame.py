#!/usr/bin/env python3
"""folded stacks -> a minimal flame graph SVG (frames under 0.3% of samples dropped). usage: flame.py TITLE < folded > svg"""
import sys, html, zlib
title=sys.argv[1]
root={}; tot=0
for line in sys.stdin:
    st,n=line.rstrip().rsplit(' ',1); n=int(n); tot+=n
    node=root
    for f in st.split(';'):
        e=node.setdefault(f,[0,{}]); e[0]+=n; node=e[1]
W=1600; H=16; out=[]; maxd=[0]
def color(name):
    h=zlib.crc32(name.encode())
    return 'rgb(%d,%d,%d)'%(205+h%50, 80+(h>>8)%120, (h>>16)%60)
def walk(node,x,d):
    for name,(n,kids) in sorted(node.items()):
        w=W*n/tot
        if n/tot>=0.003:
            maxd[0]=max(maxd[0],d)
            lab=html.escape(name); t=html.escape(name[:int(w/7)]) if w>30 else ''
            out.append((d,'<g><title>%s (%d samples, %.1f%%)</title><rect x="%.1f" y="{Y%d}" width="%.1f" height="15" fill="%s"/><text x="%.1f" y="{T%d}" font-size="11" font-family="monospace">%s</text></g>'%(lab,n,100*n/tot,x,d,w,color(name),x+2,d,t)))
            walk(kids,x,d+1)
        x+=w
walk(root,0,0)
Ht=(maxd[0]+3)*H
print('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d"><text x="4" y="14" font-size="13" font-family="sans-serif">%s (%d samples; hover a frame)</text>'%(W,Ht,html.escape(title),tot))
for d,s in out:
    y=Ht-(d+1)*H
    print(s.replace('{Y%d}'%d,str(y)).replace('{T%d}'%d,str(y+11)))
print('</svg>')
