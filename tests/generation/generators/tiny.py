"""Tiny random checkpoints of the real backends, built and saved here (nothing is downloaded).

Each builder writes a directory the way ``save_pretrained`` does for the released checkpoints,
so the generators load it through their real loading path. Tokenizers are trained on a few
captions with the ``tokenizers`` library; feature extractors come from constructor arguments;
every model has widths 8-32 and one or two layers. Shared by the tests and
``benchmarks/bench_generators.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

CAPTIONS = ["a slow waltz for accordion in 3/4", "a fast jig on the fiddle in D major",
            "a string quartet in a minor key", "solo flute melody, slow tempo",
            "a march for brass band", "a reel for fiddle and accordion"]


def t5_tokenizer(max_length: int = 32) -> transformers.T5Tokenizer:
    """A SentencePiece-like Unigram tokenizer (<pad>=0 </s>=1 <unk>=2), T5's layout."""
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(CAPTIONS * 5, trainers.UnigramTrainer(
        vocab_size=120, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>"))
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)])
    return transformers.T5Tokenizer(tokenizer_object=tok, eos_token="</s>", unk_token="<unk>",
                                    pad_token="<pad>", extra_ids=0, model_max_length=max_length)


def roberta_tokenizer(max_length: int = 16) -> transformers.RobertaTokenizer:
    """A byte-level BPE with RoBERTa's specials (<s>=0 <pad>=1 </s>=2 <unk>=3), as CLAP uses."""
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CAPTIONS * 3, trainers.BpeTrainer(
        vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return transformers.RobertaTokenizer(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        pad_token="<pad>", mask_token="<mask>", model_max_length=max_length)


def _t5_encoder(d_model: int) -> transformers.T5EncoderModel:
    return transformers.T5EncoderModel(transformers.T5Config(
        vocab_size=64, d_model=d_model, d_ff=32, d_kv=8, num_heads=2, num_layers=1))


def save_musicgen(path: Path, seed: int = 0) -> Path:
    """MusicGen: T5 (16 wide) + EnCodec (8 kHz, 2 codebooks of 32) + a 1-layer decoder."""
    torch.manual_seed(seed)
    audio = transformers.EncodecConfig(
        sampling_rate=8000, audio_channels=1, hidden_size=8, num_filters=4, num_residual_layers=1,
        upsampling_ratios=[4, 4], codebook_size=32, codebook_dim=8, num_lstm_layers=1,
        target_bandwidths=[10.0])  # 10 kbps at 500 frames/s -> 2 codebooks
    decoder = transformers.MusicgenDecoderConfig(
        vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, ffn_dim=32,
        num_codebooks=2, max_position_embeddings=512, pad_token_id=32, bos_token_id=32)
    model = transformers.MusicgenForConditionalGeneration(transformers.MusicgenConfig(
        text_encoder=transformers.T5Config(vocab_size=64, d_model=16, d_ff=32, d_kv=8,
                                           num_heads=2, num_layers=1),
        audio_encoder=audio, decoder=decoder))
    with torch.no_grad():
        # Init leaves logits nearly uniform (the prompt would not matter) and EnCodec's
        # codebooks at zero (every code would decode alike): randomise both.
        for p in model.parameters():
            p.add_(torch.randn(p.shape) * 0.3)
        for layer in model.audio_encoder.quantizer.layers:
            layer.codebook.embed.normal_(0.0, 1.0)
    model.generation_config.pad_token_id = 32
    model.generation_config.decoder_start_token_id = 32
    model.save_pretrained(path)
    transformers.MusicgenProcessor(
        feature_extractor=transformers.EncodecFeatureExtractor(feature_size=1, sampling_rate=8000),
        tokenizer=t5_tokenizer()).save_pretrained(path)
    return path


def save_audioldm2(path: Path, seed: int = 0, lm_class: str = "GPT2Model") -> Path:
    """AudioLDM2 with a 16 kHz vocoder (16 samples per mel frame) and 8/16-wide UNet and VAE.

    ``lm_class="GPT2Model"`` saves the language model the way the released checkpoints name it.
    """
    from diffusers import (
        AudioLDM2Pipeline,
        AudioLDM2ProjectionModel,
        AudioLDM2UNet2DConditionModel,
        AutoencoderKL,
        DDIMScheduler,
    )

    torch.manual_seed(seed)
    unet = AudioLDM2UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=([None, 16, 32], [None, 16, 32]), norm_num_groups=4,
        attention_head_dim=2)
    vae = AutoencoderKL(block_out_channels=[8, 16], in_channels=1, out_channels=1,
                        down_block_types=["DownEncoderBlock2D"] * 2,
                        up_block_types=["UpDecoderBlock2D"] * 2, latent_channels=4,
                        norm_num_groups=4, layers_per_block=1)
    clap = transformers.ClapModel(transformers.ClapConfig(
        text_config=dict(vocab_size=300, hidden_size=16, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=32,
                         max_position_embeddings=40, projection_dim=16),
        audio_config=dict(patch_embeds_hidden_size=8, depths=[1, 1], num_attention_heads=[1, 2],
                          hidden_size=16, projection_dim=16), projection_dim=16))
    gpt_cls = getattr(transformers, lm_class)
    lm = gpt_cls(transformers.GPT2Config(n_embd=16, n_head=2, n_layer=1, vocab_size=64,
                                         n_positions=64, bos_token_id=0, eos_token_id=0))
    lm.config.max_new_tokens = 4  # the released checkpoints set 8
    vocoder = transformers.SpeechT5HifiGan(transformers.SpeechT5HifiGanConfig(
        model_in_dim=8, sampling_rate=16000, upsample_initial_channel=8, upsample_rates=[4, 4],
        upsample_kernel_sizes=[8, 8], resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
        normalize_before=False))
    AudioLDM2Pipeline(
        vae=vae, text_encoder=clap, text_encoder_2=_t5_encoder(32),
        projection_model=AudioLDM2ProjectionModel(text_encoder_dim=16, text_encoder_1_dim=32,
                                                  langauge_model_dim=16),
        language_model=lm, tokenizer=roberta_tokenizer(), tokenizer_2=t5_tokenizer(),
        feature_extractor=transformers.ClapFeatureExtractor(feature_size=64, sampling_rate=48000),
        unet=unet, scheduler=DDIMScheduler(beta_start=0.00085, beta_end=0.012,
                                           beta_schedule="scaled_linear", clip_sample=False,
                                           set_alpha_to_one=False),
        vocoder=vocoder).save_pretrained(path)
    return path


def save_stable_audio(path: Path, seed: int = 0, scheduler: str = "EDMDPMSolverMultistepScheduler"
                      ) -> Path:
    """Stable Audio with an 800 Hz stereo Oobleck VAE (hop 8) and a 1-layer DiT (max 0.32 s).

    The EDM solver stands in for the released checkpoints' cosine SDE solver, which needs
    ``torchsde``; ``scheduler=`` rewrites ``model_index.json`` to name another one.
    """
    from diffusers import (
        AutoencoderOobleck,
        EDMDPMSolverMultistepScheduler,
        StableAudioDiTModel,
        StableAudioPipeline,
        StableAudioProjectionModel,
    )

    torch.manual_seed(seed)
    StableAudioPipeline(
        transformer=StableAudioDiTModel(
            sample_size=32, in_channels=3, num_layers=1, attention_head_dim=4,
            num_attention_heads=2, num_key_value_attention_heads=1, out_channels=3,
            cross_attention_dim=4, time_proj_dim=8, global_states_input_dim=8,
            cross_attention_input_dim=4),
        scheduler=EDMDPMSolverMultistepScheduler(solver_order=2, prediction_type="v_prediction",
                                                 sigma_data=1.0, sigma_schedule="exponential"),
        vae=AutoencoderOobleck(encoder_hidden_size=6, downsampling_ratios=[2, 4],
                               decoder_channels=3, decoder_input_channels=3, audio_channels=2,
                               channel_multiples=[2, 4], sampling_rate=800),
        text_encoder=_t5_encoder(16), tokenizer=t5_tokenizer(),
        projection_model=StableAudioProjectionModel(text_encoder_dim=16, conditioning_dim=4,
                                                    min_value=0, max_value=32),
    ).save_pretrained(path)
    if scheduler != "EDMDPMSolverMultistepScheduler":
        index = json.loads((path / "model_index.json").read_text())
        index["scheduler"] = ["diffusers", scheduler]
        (path / "model_index.json").write_text(json.dumps(index))
    return path
