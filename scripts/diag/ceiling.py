# Recall@K over the full catalogue of the oracle's ranking with the customer latent replaced.
import numpy as np, pandas as pd, json, sys
d, lam_path = sys.argv[1], sys.argv[2]
tr=json.load(open(d+'/truth/truth.json')); rm=tr['response_model']; H=tr['holdout_start_ms']
cu=pd.read_csv(d+'/customers.csv',usecols=['customer_id'],dtype=str)
it=pd.read_csv(d+'/items.csv',usecols=['item_id','kind'],dtype=str)
n,m=len(cu),len(it)
cidx={c:k for k,c in enumerate(cu.customer_id)}; iidx={c:k for k,c in enumerate(it.item_id)}
L=lambda f: np.fromfile(d+'/truth/'+f,np.float32).reshape(-1,24).astype(np.float64)
lat={'true':L('customer_latent.f32'),'observable':L('customer_latent_observable.f32'),'posterior':L('customer_latent_post.f32')}
IL=L('item_latent.f32'); IB=np.fromfile(d+'/truth/item_bias.f32',np.float32).astype(np.float64)
prod=(it.kind.values=='product')
capp=rm['click_intercept']+np.where(prod,rm['product_click_offset'],0.0); cpush=rm['open_intercept']
ev=pd.read_csv(d+'/events.csv',usecols=['ts','customer_id','item_id','type'],dtype={'ts':np.int64,'customer_id':str,'item_id':str,'type':str})
ev=ev[ev.type.isin(['click','convert','push_open'])]
ev['c']=ev.customer_id.map(cidx); ev['i']=ev.item_id.map(iidx)
before=ev[ev.ts<H].groupby('c').i.apply(set).to_dict()
after=ev[ev.ts>=H].groupby('c').i.apply(set).to_dict()
raw=np.fromfile(lam_path,np.float32).reshape(-1,1+3*m)
cids=raw[:,0].view(np.uint32)
rec={k:[] for k in ['oracle']+list(lat)}
sig=lambda z:1/(1+np.exp(-z))
for r,c in enumerate(cids):
    seen=before.get(c,set()); tg=after.get(c,set())-seen
    if not tg: continue
    lam,app,push=raw[r,1:1+m],raw[r,1+m:1+2*m],raw[r,1+2*m:]
    mask=np.zeros(m,bool); mask[list(seen)]=True
    def recall(score):
        s=np.where(mask,-np.inf,score); top=np.argsort(-s,kind='stable')[:20]
        return len(tg & set(top.tolist()))/len(tg)
    rec['oracle'].append(recall(lam.astype(np.float64)))
    for k,U in lat.items():
        x=IB+rm['alpha']*IL@U[c]
        rec[k].append(recall(app*sig(capp+x)+push*sig(cpush+x)))
for k,v in rec.items(): print(f'{k:12s} recall@20 {np.mean(v):.4f}  ({len(v)} customers)')
