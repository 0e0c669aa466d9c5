# Ideal-learner ceiling: MAP estimate of each customer's idiosyncratic latent from their own
# pre-holdout exposures, given the TRUE item latents, biases, intercepts and prior.
import numpy as np, pandas as pd, json, sys
d=sys.argv[1]
tr=json.load(open(d+'/truth/truth.json'))
rm=tr['response_model']; H=tr['holdout_start_ms']
cu=pd.read_csv(d+'/customers.csv',usecols=['customer_id'],dtype=str)
it=pd.read_csv(d+'/items.csv',usecols=['item_id','kind'],dtype=str)
n,m=len(cu),len(it)
cidx={c:k for k,c in enumerate(cu.customer_id)}; iidx={c:k for k,c in enumerate(it.item_id)}
CL=np.fromfile(d+'/truth/customer_latent.f32',np.float32).reshape(n,-1).astype(np.float64)
CO=np.fromfile(d+'/truth/customer_latent_observable.f32',np.float32).reshape(n,-1).astype(np.float64)
IL=np.fromfile(d+'/truth/item_latent.f32',np.float32).reshape(m,-1).astype(np.float64)
IB=np.fromfile(d+'/truth/item_bias.f32',np.float32).astype(np.float64)
prod=(it.kind.values=='product')
s2=((CL-CO)**2).mean(0)
ev=pd.read_csv(d+'/events.csv',dtype={'ts':np.int64,'customer_id':str,'item_id':str,'type':str,'channel':str,'request_id':str})
ev=ev[ev.ts<H]
ev['c']=ev.customer_id.map(cidx); ev['i']=ev.item_id.map(iidx)
pos=ev[ev.type.isin(['click','push_open'])][['c','i','request_id']].drop_duplicates()
posset=set(zip(pos.c,pos.i,pos.request_id))
exp=ev[ev.type.isin(['impression','push_sent'])]
y=np.array([(c,i,r) in posset for c,i,r in zip(exp.c,exp.i,exp.request_id)],float)
off=np.where(exp.type.values=='push_sent', rm['open_intercept'], rm['click_intercept']+np.where(prod[exp.i.values],rm['product_click_offset'],0.0))+IB[exp.i.values]
a=rm['alpha']
C=exp.c.values; I=exp.i.values
order=np.argsort(C,kind='stable'); C=C[order]; I=I[order]; y=y[order]; off=off[order]
bounds=np.searchsorted(C,np.arange(n+1))
P=CO.copy()
for c in range(n):
    lo,hi=bounds[c],bounds[c+1]
    if hi==lo: continue
    V=IL[I[lo:hi]]; yy=y[lo:hi]; oo=off[lo:hi]+a*V@CO[c]
    e=np.zeros(CL.shape[1])
    for _ in range(15):
        z=oo+a*V@e; p=1/(1+np.exp(-z))
        g=a*V.T@(p-yy)+e/s2
        Hm=(a*a)*(V.T*(p*(1-p)))@V+np.diag(1/s2)
        e-=np.linalg.solve(Hm,g)
    P[c]=CO[c]+e
print('var explained of idiosyncratic part:', 1-((CL-P)**2).sum()/((CL-CO)**2).sum())
P.astype(np.float32).tofile(d+'/truth/customer_latent_post.f32')
